import traceback

reported = []   # (message, exception) of every error a hook raised; the webui prints and continues


def report(message, *, exc_info=False):
    reported.append(message + "\n" + traceback.format_exc())
    print(message)
    if exc_info:
        traceback.print_exc()
