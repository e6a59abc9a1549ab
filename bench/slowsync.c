/* A slow disk for benchmarks: every fsync/fdatasync of the process sleeps SLOWSYNC_MS
 * (default 30) before doing the real call, so the journal still reaches the disk.
 *   cc -shared -fPIC -O2 -o slowsync.so bench/slowsync.c -ldl
 *   LD_PRELOAD=./slowsync.so onair daemon ...
 * (The release binary links the Swift runtime statically but libc dynamically, so the
 * preload sees SQLite's calls.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(void) {
    const char *text = getenv("SLOWSYNC_MS");
    long ms = text ? atol(text) : 30;
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0) {}
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    pause_ms();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    pause_ms();
    return real(fd);
}
