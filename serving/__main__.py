"""`python -m serving --serving-dir DIR`: the model server on its own, as the serving check
and a serving container start it."""

from serving.command import serve_command

serve_command()(prog_name="python -m serving")
