/* The wake-up floor: a bare pthread that only sleeps in ppoll until its next 100 Hz deadline and
 * counts its own CPU, the way the native sampler's thread sleeps between ticks. Built by
 * bench/wake_floor.py with the platform's compiler; no Python in its loop. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

static pthread_t thread;
static volatile int stopping;
static volatile uint64_t wakes, cpu_ns;
static int64_t interval_ns;

static int64_t now_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *run(void *arg)
{
    (void)arg;
    int64_t deadline = now_ns(CLOCK_MONOTONIC), spent = now_ns(CLOCK_THREAD_CPUTIME_ID);
    while (!stopping) {
        deadline += interval_ns;
        int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
        if (left > 0) {
            struct timespec t = {left / 1000000000LL, left % 1000000000LL};
            struct pollfd p = {-1, POLLIN, 0};
            ppoll(&p, 1, &t, NULL);
        }
        int64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID);
        cpu_ns += (uint64_t)(cpu - spent); /* read by the caller between wakes: a figure only */
        spent = cpu;
        wakes++;
    }
    return NULL;
}

int wake_floor_start(double hz)
{
    interval_ns = (int64_t)(1e9 / hz);
    stopping = 0;
    return pthread_create(&thread, NULL, run, NULL);
}

void wake_floor_read(uint64_t *out_wakes, uint64_t *out_cpu_ns)
{
    *out_wakes = wakes;
    *out_cpu_ns = cpu_ns;
}

void wake_floor_stop(void)
{
    stopping = 1;
    pthread_join(thread, NULL);
}
