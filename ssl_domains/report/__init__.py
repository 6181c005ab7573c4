"""Reports: read finished run and sweep folders and draw them (plots, HTML page, model card).

The top of the host: nothing below it imports this package (or matplotlib).
"""
