#define _GNU_SOURCE
#include "COnAirSystem.h"
#include <malloc.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int onair_realtime_alarm(long seconds, long nanoseconds) {
    int fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0) return -1;
    struct itimerspec spec = {0};
    spec.it_value.tv_sec = seconds;
    spec.it_value.tv_nsec = nanoseconds;
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, NULL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One malloc arena for all threads (M_ARENA_MAX = 1), set before main, so before the first thread
 * makes an arena of its own. The daemon's threads (Swift's executor, the libcurl engine, the
 * journal's committer, the control server's event loop) mostly hand work to each other rather than
 * allocate side by side; each arena kept free space of its own, and a storm's peak held a second
 * 14 MiB arena beside the main heap. What it costs a burst is not settled (BENCHMARKS.md, issue 13,
 * sixth session: two A/B sittings saw it lower, one saw no difference). */
__attribute__((constructor)) static void onair_one_malloc_arena(void) {
    mallopt(M_ARENA_MAX, 1);
}
