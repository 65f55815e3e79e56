from components.image_folder_example_gen.component import ImageFolderExampleGen

__all__ = ["ImageFolderExampleGen"]
