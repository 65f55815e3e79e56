"""What counts as an image, for training and serving alike: the formats the model's decoder
(`tf.io.decode_image`, in `modules/transform.py`) reads, and the pixel limit above which an
image is refused before it is decoded. Ingestion, `predict`, `predict-batch` and `serve` all
use these."""

# Pillow's name of each format, and the file extensions ingestion takes for it.
IMAGE_FORMATS = {
    "JPEG": (".jpg", ".jpeg"),
    "PNG": (".png",),
    "BMP": (".bmp",),
    "GIF": (".gif",),
    "WEBP": (".webp",),
}
IMAGE_EXTENSIONS = tuple(
    extension for extensions in IMAGE_FORMATS.values() for extension in extensions
)
# A small compressed file can expand to gigabytes of pixels (a 389 KB PNG to 20000x20000).
MAX_IMAGE_PIXELS = 40_000_000
