#define _GNU_SOURCE
#include "COnAirSystem.h"
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
