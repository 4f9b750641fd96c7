/* The floor under sim's spawn time: a small C program forks N children, which block on a
 * pipe as sim's workers wait at the start gate, from K forkers at once; it prints the time
 * from its first fork to every child forked.
 *   cc -O2 benches/fork-floor.c -o /tmp/fork-floor && /tmp/fork-floor 1000 1
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CHILDREN FORKERS\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), k = atoi(argv[2]);
    int gate[2], done[2];
    if (n < 1 || k < 1 || pipe(gate) || pipe(done)) {
        fprintf(stderr, "bad arguments, or no pipe\n");
        return 2;
    }
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int j = 0; j < k; j++) {
        if (fork() == 0) {
            close(gate[1]);
            close(done[0]);
            for (int i = 0; i < n / k; i++) {
                if (fork() == 0) {
                    char b;
                    close(done[1]);
                    read(gate[0], &b, 1);
                    _exit(0);
                }
            }
            write(done[1], "x", 1);
            char b;
            read(gate[0], &b, 1);
            while (wait(NULL) > 0) {}
            _exit(0);
        }
    }
    close(done[1]);
    char b;
    for (int j = 0; j < k; j++) read(done[0], &b, 1);
    clock_gettime(CLOCK_MONOTONIC, &z);
    printf("%d children from %d forkers: %.1f ms\n", n / k * k, k,
           ((z.tv_sec - a.tv_sec) * 1e9 + (z.tv_nsec - a.tv_nsec)) / 1e6);
    close(gate[1]);
    while (wait(NULL) > 0) {}
    return 0;
}
