"""Test harness: executes a compiled KFP v2 PipelineSpec the way the KFP v2 launcher does.

For each task of root.dag.tasks, in dependency order:
1. build the ExecutorInput that replaces the `{{$}}` placeholder: parameter constants,
   input artifacts from the producers' executor_output.json, output artifact URIs under
   <root>/<run>/<task>/<attempt>/<key> (KFP 2's driver salts each attempt's URIs), and the
   output file;
2. run the lifecycle.preCacheCheck driver first when there is one (ExampleGen's), keep its
   parameterValues and merge its artifact metadata into the outputs;
3. run container.command + args (`python -m MODULE ARGS`) with this project's Python as
   the container;
4. read executor_output.json for downstream tasks.
A task named in `kill_first` is SIGKILLed once its condition holds, as an evicted pod is,
and retried, which its retryPolicy must allow.
Image and resources are ignored: only a cluster tests those. A task this harness cannot run
(a resolver or importer) fails the run with its name.

Each task runs in a process of its own, as in a pod. The processes are forked from a
multiprocessing forkserver that has imported the commands' modules and executor classes
once, so a task does not spend 15-30 s importing TensorFlow and TFX before it starts.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import runpy
import sys
import time
from collections.abc import Callable
from graphlib import TopologicalSorter
from typing import Any

import yaml
from forked import forkserver


class UnsupportedTask(RuntimeError):
    pass


def _order(tasks: dict[str, Any]) -> list[str]:
    graph = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    return list(TopologicalSorter(graph).static_order())


def _python_module(command: list[str]) -> str:
    if command[:2] != ["python", "-m"]:
        raise UnsupportedTask(f"expected a `python -m MODULE` command, got {command[:3]}")
    return command[2]


def _preloads(executors: dict[str, Any]) -> list[str]:
    """The modules every task imports first: its command's module and its executor class's."""
    modules = set()
    for executor in executors.values():
        container = executor.get("container", {})
        for command in (container, container.get("lifecycle", {}).get("preCacheCheck", {})):
            if "command" not in command:
                continue
            modules.add(_python_module(command["command"]))
            args = command.get("args", [])
            if "--executor_class_path" in args:
                path = args[args.index("--executor_class_path") + 1]
                modules.add(path.rsplit(".", 1)[0])
    return sorted(modules)


def _task_main(module: str, args: list[str], log_path: str) -> None:
    """`python -m MODULE ARGS`, in this forked process, with its output in the task's log."""
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


class TaskRunner:
    """Runs tasks' commands in processes forked from a server that pre-imported them."""

    def __init__(self, executors: dict[str, Any]) -> None:
        self._context = forkserver(_preloads(executors))

    def run(
        self,
        command: list[str],
        executor_input: dict,
        log_path: str,
        kill_when: Callable[[], bool] | None = None,
    ) -> bool:
        """Runs the command; with `kill_when`, SIGKILLs it once that holds. Returns whether
        it ran to the end."""
        payload = json.dumps(executor_input)
        args = [payload if arg == "{{$}}" else arg for arg in command[3:]]
        module = _python_module(command)
        process = self._context.Process(target=_task_main, args=(module, args, log_path))
        process.start()
        while kill_when and process.is_alive():
            if kill_when():
                process.kill()
                process.join()
                return False
            time.sleep(0.05)
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"python -m {module} exited {process.exitcode}; see {log_path}")
        return True


def run_spec(
    spec_path: str,
    root: str,
    run_id: str,
    kill_first: dict[str, Callable[[str], bool]] | None = None,
) -> dict[str, dict]:
    """Runs every task; returns {task: executor output artifacts}. `kill_first`: {task:
    condition on its folder}, for tasks whose first attempt is killed and then retried."""
    kill_first = kill_first or {}
    with open(spec_path) as handle:
        spec = yaml.safe_load(handle)
    runner = TaskRunner(spec["deploymentSpec"]["executors"])
    outputs: dict[str, dict] = {}
    for name in _order(spec["root"]["dag"]["tasks"]):
        task_dir = os.path.join(root, run_id, name)
        condition = kill_first.get(name)
        if condition:
            retries = spec["root"]["dag"]["tasks"][name].get("retryPolicy", {})
            if retries.get("maxRetryCount", 0) < 1:
                raise UnsupportedTask(f"task {name} has no retry policy; KFP would not retry it")
            killed_when = functools.partial(condition, task_dir)
            _run_task(runner, spec, name, outputs, task_dir, 1, run_id, killed_when)
        attempt = 2 if condition else 1
        outputs[name] = _run_task(runner, spec, name, outputs, task_dir, attempt, run_id, None)
    return outputs


def _run_task(
    runner: TaskRunner,
    spec: dict[str, Any],
    name: str,
    outputs: dict[str, dict],
    task_dir: str,
    attempt: int,
    run_id: str,
    kill_when: Callable[[], bool] | None,
) -> dict[str, Any]:
    """One attempt of a task; returns its output artifacts."""
    task = spec["root"]["dag"]["tasks"][name]
    component = spec["components"][task["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    if "container" not in executor:
        raise UnsupportedTask(
            f"task {name} is a {next(iter(executor))} executor, which "
            "needs the KFP backend's metadata queries"
        )
    attempt_dir = os.path.join(task_dir, str(attempt))
    os.makedirs(attempt_dir, exist_ok=True)
    output_file = os.path.join(attempt_dir, "executor_output.json")
    parameters = {
        key: value["runtimeValue"]["constant"]
        for key, value in task.get("inputs", {}).get("parameters", {}).items()
    }
    artifacts = {}
    for key, value in task.get("inputs", {}).get("artifacts", {}).items():
        source = value["taskOutputArtifact"]
        produced = outputs[source["producerTask"]][source["outputArtifactKey"]]
        artifacts[key] = copy.deepcopy(produced)
    out_artifacts = {
        key: {
            "artifacts": [
                {
                    "name": f"{run_id}-{name}-{key}",
                    "type": definition["artifactType"],
                    "uri": os.path.join(attempt_dir, key),
                    "metadata": {},
                }
            ]
        }
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items()
    }
    executor_input = {
        "inputs": {"parameterValues": parameters, "artifacts": artifacts},
        "outputs": {"artifacts": out_artifacts, "outputFile": output_file},
    }
    container = executor["container"]
    log_path = os.path.join(attempt_dir, "log.txt")
    driver = container.get("lifecycle", {}).get("preCacheCheck")
    if driver:
        runner.run(driver["command"] + driver["args"], executor_input, log_path)
        with open(output_file) as handle:
            driven = json.load(handle)
        parameters.update(driven.get("parameterValues", {}))
        for key, value in driven.get("artifacts", {}).items():
            for produced, declared in zip(
                value["artifacts"], out_artifacts[key]["artifacts"], strict=False
            ):
                declared["metadata"].update(produced.get("metadata", {}))
        os.remove(output_file)
    if not runner.run(
        container["command"] + container["args"], executor_input, log_path, kill_when
    ):
        return {}
    with open(output_file) as handle:
        produced = json.load(handle).get("artifacts", {})
    return {
        key: {
            "artifacts": [
                {**declared, **item, "type": declared["type"]}
                for declared, item in zip(
                    out_artifacts[key]["artifacts"],
                    produced.get(key, out_artifacts[key])["artifacts"],
                    strict=False,
                )
            ]
        }
        for key in out_artifacts
    }
