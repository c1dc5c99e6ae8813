"""Running one function from many threads at once, for the thread-safety tests."""
import sys
import threading


def run_in_threads(fn, inputs, repeats=100, fast_switching=True):
    """Call ``fn(inputs[i])`` in thread i, ``repeats`` times, all threads
    released together; returns each thread's last result.

    With ``fast_switching`` the interpreter switches threads every
    microsecond, so races on shared state show up.  Any exception raised in
    a thread fails the caller.
    """
    switch = sys.getswitchinterval()
    if fast_switching:
        sys.setswitchinterval(1e-6)
    try:
        return _run(fn, inputs, repeats)
    finally:
        sys.setswitchinterval(switch)


def _run(fn, inputs, repeats):
    results = [None] * len(inputs)
    errors = []
    barrier = threading.Barrier(len(inputs))

    def work(i):
        try:
            barrier.wait()
            for _ in range(repeats):
                results[i] = fn(inputs[i])
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results
