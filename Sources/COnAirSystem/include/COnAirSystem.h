// Linux calls that Glibc's Swift module does not expose.
#ifndef ONAIR_SYSTEM_H
#define ONAIR_SYSTEM_H

/// A non-blocking CLOCK_REALTIME timerfd that expires at the absolute Unix time `seconds` +
/// `nanoseconds`, and is cancelled (read() fails with ECANCELED) when the clock is set.
/// Returns the descriptor, or -1 with errno set.
int onair_realtime_alarm(long seconds, long nanoseconds);

// Every process that links this (the onair binary, its tests) starts with one malloc arena for
// all its threads: see onair_one_malloc_arena in system.c.

#endif
