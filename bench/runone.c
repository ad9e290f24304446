/*
 * runone.c -- run one benchmark process and measure it, as /usr/bin/time
 * does: runone RESULTFILE PRELOAD|- prog [args...]
 *
 * Why not measure from run.py directly: ru_maxrss of a child counts the
 * memory image it had before exec, i.e. a fork of the (large) Python
 * harness; every workload would then report at least the harness's RSS.
 * This launcher is small, so its fork is too.  PRELOAD is put into
 * LD_PRELOAD of the measured program only (never of the launcher).
 * Writes "wall_s=.. maxrss_kb=.. user_s=.. sys_s=.." to RESULTFILE and
 * exits with the program's exit status (128+signal when killed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    struct rusage ru;
    double t0, t1;
    int status;
    pid_t pid;
    FILE *out;

    if (argc < 4) {
        fprintf(stderr, "usage: runone RESULTFILE PRELOAD|- prog [args...]\n");
        return 2;
    }
    t0 = now();
    pid = fork();
    if (pid < 0) {
        perror("runone: fork");
        return 2;
    }
    if (pid == 0) {
        if (strcmp(argv[2], "-") != 0)
            setenv("LD_PRELOAD", argv[2], 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[3], argv + 3);
        fprintf(stderr, "runone: cannot run %s: %s\n", argv[3], strerror(errno));
        _exit(126);
    }
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("runone: wait4");
            return 2;
        }
    t1 = now();
    out = fopen(argv[1], "w");
    if (!out) {
        perror("runone: result file");
        return 2;
    }
    fprintf(out, "wall_s=%.9f maxrss_kb=%ld user_s=%.6f sys_s=%.6f\n", t1 - t0, ru.ru_maxrss,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
    fclose(out);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
