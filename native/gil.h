/* The GIL, as the sampler needs it: who holds it, asking the holder to let go, and stopping every
 * thread that runs Python for the length of a tick without taking the GIL through its queue.
 *
 * Why stop rather than take: a thread that wants the GIL waits on its condition variable behind
 * every other waiter, each of which keeps it for a switch interval (5 ms), so with ten busy
 * threads a tick waited about 50 ms; and each hand-off puts the holder to sleep twice. Instead the
 * sampler takes the GIL's mutex (which every thread needs to take or give up the GIL) and asks
 * the holder to let go. The holder reaches its next check, marks itself detached and blocks on
 * the mutex (its word then marks a waiter; the kernel shows it in a futex wait), at the same point where it would
 * give the GIL up: its frames are complete, as they are when another thread takes the GIL. No other thread can run Python meanwhile, since taking
 * the GIL needs the mutex. The tick reads every thread, takes back its own request to let go
 * (so that the holder does not wait for a switch nobody makes) and lets the mutex go: the holder
 * gives the GIL up and takes it back, or a waiter takes it, as at any switch; one sleep instead
 * of two.
 *
 * A stopped tick has no thread state: it calls nothing that needs one (no attribute lookups, no
 * error handling), only reads and reference counts of objects that stay alive. What needs more
 * (thread names, which loop runs on which thread) is done in the ticks that take the GIL. If the
 * holder does not reach a check soon (a long C call that keeps the GIL), the tick takes the GIL
 * the usual way, its request standing. */
#ifndef DG_GIL_H
#define DG_GIL_H

#include <Python.h>
#include <pthread.h>
#include <stdint.h>

#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_ceval.h" /* the drop request: a bit of the holder's eval breaker */
#include "internal/pycore_pystate.h"
#elif PY_VERSION_HEX < 0x030B0000
#include "internal/pycore_interp.h" /* the drop request lives in the interpreter */
#endif
#include "internal/pycore_runtime.h"

/* Stopping needs a thread state for nothing it does only where reference counts are plain. */
#if defined(Py_REF_DEBUG) || defined(Py_GIL_DISABLED)
#define DG_CAN_STOP 0
#else
#define DG_CAN_STOP 1
#endif

typedef struct {
    uintptr_t lo, hi;
} dg_span;

static inline struct _gil_runtime_state *dg_gil(PyInterpreterState *interp)
{
#if PY_VERSION_HEX >= 0x030C0000
    return interp->ceval.gil;
#else
    (void)interp;
    return &_PyRuntime.ceval.gil;
#endif
}

static inline int dg_gil_locked(struct _gil_runtime_state *gil)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int_relaxed(&gil->locked) > 0;
#else
    return _Py_atomic_load_relaxed(&gil->locked) > 0;
#endif
}

static inline PyThreadState *dg_gil_last_holder(struct _gil_runtime_state *gil)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_ptr_relaxed(&gil->last_holder);
#else
    return (PyThreadState *)_Py_atomic_load_relaxed(&gil->last_holder);
#endif
}

/* The switch interval (sys.setswitchinterval), in microseconds. */
static inline unsigned long dg_gil_interval_us(struct _gil_runtime_state *gil)
{
    return gil->interval >= 1 ? gil->interval : 1;
}

/* How many times the GIL went to another thread state than its last holder (take_gil counts
 * under the GIL's mutex). Equal at two ticks: no thread state but the last holder took the GIL
 * in between, so no other thread ran Python, and their frames are as the first tick read them.
 * The exception is a thread state the holder's own thread swaps in (PyThreadState_Swap) and
 * runs without a take: rare, and then only that state's stack is late, until its clock is due. */
static inline unsigned long dg_gil_switches(struct _gil_runtime_state *gil)
{
    return ((volatile struct _gil_runtime_state *)gil)->switch_number;
}

/* The GIL's own words (its mutexes and condition variables): a thread in a futex wait on one of
 * them wants the GIL; it is not blocked in the program. */
static inline dg_span dg_gil_span(struct _gil_runtime_state *gil)
{
    dg_span span = {(uintptr_t)gil, (uintptr_t)gil + sizeof(*gil)};
    return span;
}

/* Whether a futex word is the GIL's mutex, which a thread giving the GIL up blocks on. */
static inline int dg_gil_is_mutex(struct _gil_runtime_state *gil, uintptr_t word)
{
    return word >= (uintptr_t)&gil->mutex && word < (uintptr_t)&gil->mutex + sizeof(gil->mutex);
}

/* With the GIL's mutex held and the GIL locked: ask its holder to let go at its next check, as a
 * waiter does once the switch interval has passed (without this a tick that takes the GIL would
 * first sleep out that interval and wake once more to ask). The mutex keeps the holder from
 * letting go, and so from being freed, meanwhile. */
static inline void dg_gil_ask_locked(PyInterpreterState *interp, PyThreadState *holder)
{
#if PY_VERSION_HEX >= 0x030D0000
    (void)interp;
    if (holder != NULL)
        _Py_set_eval_breaker_bit(holder, _PY_GIL_DROP_REQUEST_BIT);
#else
    (void)holder;
    _Py_atomic_store_relaxed(&interp->ceval.gil_drop_request, 1);
    _Py_atomic_store_relaxed(&interp->ceval.eval_breaker, 1);
#endif
}

/* Whether the holder has marked itself detached on its way to give the GIL up: it then touches
 * no Python object, and is blocked on the mutex or about to be (the caller also waits until the
 * mutex's word, or else the kernel, shows it blocked there). `holder` must be a live thread state (the caller holds the
 * thread list's lock and found it there). */
static inline int dg_gil_holder_stopped(PyThreadState *holder)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int_relaxed(&holder->state) == _Py_THREAD_DETACHED;
#elif PY_VERSION_HEX >= 0x030C0000
    return !((volatile PyThreadState *)holder)->_status.active;
#else
    (void)holder;
    return _Py_atomic_load_relaxed(&_PyRuntime.gilstate.tstate_current) == 0;
#endif
}

/* Whether a thread waits on the GIL's mutex, held by the caller: 1 or 0 from the lock word,
 * which glibc sets to 2 (locked, with waiters) before a waiter's futex wait, after everything the
 * waiter stored before it asked for the lock (the exchange is a locked instruction); -1 where the
 * C library's word is not known. The caller reads it once as it takes the mutex: a 2 then may be
 * left from an earlier contended lock, and the word says nothing for that stop. Another thread
 * than the holder may be the waiter (it wants the GIL): the holder is then detached, in the C
 * code between giving up its thread state and the mutex, where it reads no frame. */
static inline int dg_gil_mutex_waited(struct _gil_runtime_state *gil)
{
#if defined(__GLIBC__)
    return __atomic_load_n(&gil->mutex.__data.__lock, __ATOMIC_ACQUIRE) == 2;
#else
    (void)gil;
    return -1;
#endif
}

/* Whether a thread state is attached (runs Python) where the version keeps that per thread
 * (3.12 and later; 3.10 and 3.11 keep one current thread state, which the holder check reads).
 * A stopped tick finding one drops its reading: last_holder may be stale (a thread state swapped
 * in under the GIL), and then the detached one it names is not the thread running Python. */
static inline int dg_thread_attached(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int_relaxed(&ts->state) == _Py_THREAD_ATTACHED;
#elif PY_VERSION_HEX >= 0x030C0000
    return ((volatile PyThreadState *)ts)->_status.active;
#else
    (void)ts;
    return 0;
#endif
}

/* Whether a thread waiting for the GIL has already asked the holder to let go (read with the
 * GIL's mutex held, under which waiters ask): the holder then owes it the forced switch. */
static inline int dg_gil_drop_requested(PyInterpreterState *interp, PyThreadState *holder)
{
#if PY_VERSION_HEX >= 0x030D0000
    (void)interp;
    return holder != NULL && _Py_eval_breaker_bit_is_set(holder, _PY_GIL_DROP_REQUEST_BIT);
#else
    (void)holder;
    return _Py_atomic_load_relaxed(&interp->ceval.gil_drop_request) != 0;
#endif
}

/* End a stop and let the mutex go. If only the tick had asked the holder to let go, take the
 * request back first: the holder then gives the GIL up and takes it back with no wait for a
 * switch that nobody would make, and no switch is counted, so a waiter's own interval runs on
 * and it asks in its turn. (Naming another thread the last holder instead would count a switch
 * at every tick and keep a waiter from ever asking while ticks come faster than its interval.)
 * The eval breaker is left set: the holder's take_gil recomputes it. If a waiter had asked
 * before the tick, its request stands, and the holder waits until that waiter has the GIL. */
static inline void dg_gil_resume(struct _gil_runtime_state *gil, PyInterpreterState *interp,
                                 PyThreadState *holder, int waiter)
{
    if (!waiter) {
#if PY_VERSION_HEX >= 0x030D0000
        (void)interp;
        _Py_unset_eval_breaker_bit(holder, _PY_GIL_DROP_REQUEST_BIT);
#else
        (void)holder;
        _Py_atomic_store_relaxed(&interp->ceval.gil_drop_request, 0);
#endif
    }
    pthread_mutex_unlock(&gil->mutex);
}

#endif
