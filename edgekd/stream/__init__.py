"""The `edgekd stream` application: sources (video file, camera), the running answer, labels drawn on
the frames, the mp4 writer. It sits above edgekd.runtime (StreamRunner) and beside export and bench.
"""
