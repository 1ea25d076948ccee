/* tests/perf/ipc_loops/loops.c: the minimal C loop for each mechanism of `ipcbench matrix`,
 * doing the same exchange: fork; the parent sends SIZE bytes (a sequence number in the first
 * bytes), the child sends the same bytes back, the parent checks the first byte; COUNT/10 (at
 * least 100) untimed round trips, then COUNT timed ones, clock_gettime around each.
 * Prints the median round trip in ns, rounded up to the edge of the same log-scale histogram
 * bucket (16 per power of two) ipcbench reports its p50 from, so both print the same quantity.
 * The same set-up as ipcbench's, except that the shared memory is mmap(MAP_SHARED |
 * MAP_ANONYMOUS) (the same kind of shmem pages shm_open gives, with no name to remove) and
 * nothing is checked beyond the first byte.
 * Usage: loops MECHANISM SIZE COUNT same|split|none     (built by tests/perf/ipc.sh)
 * Errors end the run with a message and exit 1: this is a measuring loop, not a lesson. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

enum kind { STREAM, MESSAGE, MQ, SHM_FUTEX, SHM_SPIN, SHM_SEM, EVENTFD, SIGNAL };
static enum kind kind;
static size_t size;
static int in_fd, out_fd;      /* STREAM, MESSAGE, EVENTFD: this side's descriptors */
static int fds[4];             /* [0] client reads, [1] client writes, [2] server reads, [3] server writes */
static mqd_t mq_in, mq_out, mqs[2];
struct slot { _Atomic uint32_t full; sem_t posted; char pad[64]; };
static struct slot *slots;     /* [0] client -> server, [1] server -> client */
static char *data;             /* two payloads after the slots */
static int slot_in, slot_out;
static pid_t peer;
static sigset_t rtmin;

static void two_pipes(int up[2], int down[2]) {
    fds[0] = down[0]; fds[1] = up[1]; fds[2] = up[0]; fds[3] = down[1];
}

static void fifo_pair(const char *dir, const char *name, int end[2]) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (mkfifo(path, 0600) == -1) die("mkfifo");
    if ((end[0] = open(path, O_RDONLY | O_NONBLOCK)) == -1) die("open");
    if ((end[1] = open(path, O_WRONLY)) == -1) die("open");
    if (fcntl(end[0], F_SETFL, 0) == -1) die("fcntl");
    unlink(path);
}

static void tcp_or_udp(int type) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in b = a;
    socklen_t len = sizeof a;
    int s1 = socket(AF_INET, type, 0), s2 = socket(AF_INET, type, 0), one = 1;
    if (s1 == -1 || s2 == -1) die("socket");
    if (bind(s1, (struct sockaddr *)&a, sizeof a) == -1) die("bind");
    if (getsockname(s1, (struct sockaddr *)&a, &len) == -1) die("getsockname");
    if (type == SOCK_STREAM) {
        if (listen(s1, 1) == -1 || connect(s2, (struct sockaddr *)&a, sizeof a) == -1) die("connect");
        int s3 = accept(s1, NULL, NULL);
        if (s3 == -1) die("accept");
        close(s1);
        s1 = s3;
        setsockopt(s1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(s2, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
        if (bind(s2, (struct sockaddr *)&b, sizeof b) == -1) die("bind");
        len = sizeof b;
        if (getsockname(s2, (struct sockaddr *)&b, &len) == -1) die("getsockname");
        if (connect(s1, (struct sockaddr *)&b, sizeof b) == -1) die("connect");
        if (connect(s2, (struct sockaddr *)&a, sizeof a) == -1) die("connect");
    }
    fds[0] = fds[1] = s2; fds[2] = fds[3] = s1;
}

static void setup(const char *m) {
    int up[2], down[2];
    if (!strcmp(m, "pipe") || !strcmp(m, "fifo")) {
        kind = STREAM;
        if (!strcmp(m, "pipe")) {
            if (pipe(up) == -1 || pipe(down) == -1) die("pipe");
        } else {
            char dir[] = "/tmp/loops-fifo.XXXXXX";
            if (!mkdtemp(dir)) die("mkdtemp");
            fifo_pair(dir, "up", up);
            fifo_pair(dir, "down", down);
            rmdir(dir);
        }
        two_pipes(up, down);
    } else if (!strcmp(m, "socketpair") || !strcmp(m, "unix-seqpacket") || !strcmp(m, "unix-dgram")) {
        kind = !strcmp(m, "socketpair") ? STREAM : MESSAGE;
        int type = !strcmp(m, "socketpair") ? SOCK_STREAM : !strcmp(m, "unix-dgram") ? SOCK_DGRAM : SOCK_SEQPACKET;
        if (socketpair(AF_UNIX, type, 0, up) == -1) die("socketpair");
        fds[0] = fds[1] = up[0]; fds[2] = fds[3] = up[1];
    } else if (!strcmp(m, "tcp")) {
        kind = STREAM;
        tcp_or_udp(SOCK_STREAM);
    } else if (!strcmp(m, "udp")) {
        kind = MESSAGE;
        tcp_or_udp(SOCK_DGRAM);
    } else if (!strcmp(m, "mq")) {
        kind = MQ;
        struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = (long)size};
        for (int i = 0; i < 2; i++) {
            char name[64];
            snprintf(name, sizeof name, "/loops-%d-%d", getpid(), i);
            if ((mqs[i] = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr)) == (mqd_t)-1) die("mq_open");
            mq_unlink(name);
        }
    } else if (!strncmp(m, "shm-", 4)) {
        kind = !strcmp(m, "shm-futex") ? SHM_FUTEX : !strcmp(m, "shm-spin") ? SHM_SPIN : SHM_SEM;
        slots = mmap(NULL, 2 * sizeof *slots + 2 * size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (slots == MAP_FAILED) die("mmap");
        data = (char *)(slots + 2);
        for (int i = 0; i < 2 && kind == SHM_SEM; i++) {
            if (sem_init(&slots[i].posted, 1, 0) == -1) die("sem_init");
        }
    } else if (!strcmp(m, "eventfd")) {
        kind = EVENTFD;
        if ((fds[0] = eventfd(0, 0)) == -1 || (fds[2] = eventfd(0, 0)) == -1) die("eventfd");
        fds[3] = fds[0]; fds[1] = fds[2];
    } else if (!strcmp(m, "signal")) {
        kind = SIGNAL;
        sigemptyset(&rtmin);
        sigaddset(&rtmin, SIGRTMIN);
        if (sigprocmask(SIG_BLOCK, &rtmin, NULL) == -1) die("sigprocmask");
    } else {
        fprintf(stderr, "loops: no mechanism %s\n", m);
        exit(2);
    }
}

static void keep(int client) {
    in_fd = fds[client ? 0 : 2];
    out_fd = fds[client ? 1 : 3];
    mq_in = mqs[client ? 1 : 0];
    mq_out = mqs[client ? 0 : 1];
    slot_in = client ? 1 : 0;
    slot_out = client ? 0 : 1;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)word, op, val, NULL, NULL, 0);
}

static void xsend(const char *buf) {
    uint64_t v = 0;
    union sigval sv;
    switch (kind) {
    case STREAM:
        for (size_t done = 0; done < size;) {
            ssize_t n = write(out_fd, buf + done, size - done);
            if (n == -1) die("write");
            done += (size_t)n;
        }
        break;
    case MESSAGE: if (send(out_fd, buf, size, 0) != (ssize_t)size) die("send"); break;
    case MQ: if (mq_send(mq_out, buf, size, 0) == -1) die("mq_send"); break;
    case SHM_FUTEX: case SHM_SPIN: case SHM_SEM:
        memcpy(data + (size_t)slot_out * size, buf, size);
        if (kind == SHM_SEM) {
            if (sem_post(&slots[slot_out].posted) == -1) die("sem_post");
        } else {
            atomic_store_explicit(&slots[slot_out].full, 1, memory_order_release);
            if (kind == SHM_FUTEX && futex(&slots[slot_out].full, FUTEX_WAKE, 1) == -1) die("futex");
        }
        break;
    case EVENTFD:
        memcpy(&v, buf, size);
        v |= (uint64_t)1 << 56;
        if (write(out_fd, &v, 8) != 8) die("write");
        break;
    case SIGNAL:
        memset(&sv, 0, sizeof sv);
        memcpy(&sv, buf, size);
        if (sigqueue(peer, SIGRTMIN, sv) == -1) die("sigqueue");
        break;
    }
}

static void xrecv(char *buf) {
    uint64_t v = 0;
    siginfo_t info;
    switch (kind) {
    case STREAM:
        for (size_t done = 0; done < size;) {
            ssize_t n = read(in_fd, buf + done, size - done);
            if (n <= 0) die("read");
            done += (size_t)n;
        }
        break;
    case MESSAGE: if (recv(in_fd, buf, size, 0) != (ssize_t)size) die("recv"); break;
    case MQ: if (mq_receive(mq_in, buf, size, NULL) != (ssize_t)size) die("mq_receive"); break;
    case SHM_FUTEX: case SHM_SPIN: case SHM_SEM:
        if (kind == SHM_SEM) {
            while (sem_wait(&slots[slot_in].posted) == -1) if (errno != EINTR) die("sem_wait");
        } else {
            for (unsigned polls = 1; !atomic_load_explicit(&slots[slot_in].full, memory_order_acquire); polls++) {
                if (kind == SHM_FUTEX) futex(&slots[slot_in].full, FUTEX_WAIT, 0);
                else if (polls % 1024 == 0) sched_yield();
            }
        }
        memcpy(buf, data + (size_t)slot_in * size, size);
        atomic_store_explicit(&slots[slot_in].full, 0, memory_order_relaxed);
        break;
    case EVENTFD:
        if (read(in_fd, &v, 8) != 8) die("read");
        v &= ~((uint64_t)1 << 56);
        memcpy(buf, &v, size);
        break;
    case SIGNAL:
        if (sigwaitinfo(&rtmin, &info) == -1) die("sigwaitinfo");
        memcpy(buf, &info.si_value, size);
        break;
    }
}

static void pin(int cpu) {
    cpu_set_t set;
    if (cpu < 0) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) == -1) die("sched_setaffinity");
}

/* ipcbench's histogram: the upper edge of the bucket ns falls in (bench/measure.cpp). */
static uint64_t bucket_edge(uint64_t ns) {
    if (ns < 16) return ns;
    unsigned exp = 63 - (unsigned)__builtin_clzll(ns);
    uint64_t sub = (ns >> (exp - 4)) & 15;
    return ((16 + sub + 1) << (exp - 4)) - 1;
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: loops MECHANISM SIZE COUNT same|split|none\n"); return 2; }
    size = strtoul(argv[2], NULL, 10);
    uint64_t count = strtoull(argv[3], NULL, 10), warmup = count / 10 < 100 ? 100 : count / 10;
    int cpus[2] = {-1, -1}, found = 0;
    cpu_set_t allowed;
    sched_getaffinity(0, sizeof allowed, &allowed);
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++) if (CPU_ISSET(c, &allowed)) cpus[found++] = c;
    if (!strcmp(argv[4], "same")) cpus[1] = cpus[0];
    if (!strcmp(argv[4], "none") || (!strcmp(argv[4], "split") && found < 2)) cpus[0] = cpus[1] = -1;
    setup(argv[1]);
    char *out = malloc(size), *in = malloc(size);
    uint64_t *samples = malloc(count * sizeof *samples);
    if (!out || !in || !samples) die("malloc");
    memset(out, 7, size);
    pid_t parent = getpid(), pid = fork();
    if (pid == -1) die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pin(cpus[1]);
        keep(0);
        peer = parent;
        for (uint64_t i = 0; i < warmup + count; i++) { xrecv(in); xsend(in); }
        _exit(0);
    }
    pin(cpus[0]);
    keep(1);
    peer = pid;
    for (uint64_t i = 0; i < warmup + count; i++) {
        out[0] = (char)(i | 1);
        uint64_t start = now_ns();
        xsend(out);
        xrecv(in);
        if (i >= warmup) samples[i - warmup] = now_ns() - start;
        if (in[0] != out[0]) { fprintf(stderr, "loops: %s: the answer differs\n", argv[1]); return 1; }
    }
    int status;
    if (waitpid(pid, &status, 0) == -1 || status != 0) die("waitpid");
    qsort(samples, count, sizeof *samples, by_value);
    printf("%s %llu\n", argv[1], (unsigned long long)bucket_edge(samples[(count - 1) / 2]));
    return 0;
}
