/* writefaults: an LD_PRELOAD shim that makes writes to TCP sockets take short writes and
 * EAGAIN at random (test-only; built and used by tests/test_write_faults.py).
 *
 * It interposes write, writev, send, sendto, sendmsg, sendfile and sendfile64. It acts only
 * when CATZILLA_WRITE_FAULTS is set (to a seed, an unsigned integer), and only on sockets of
 * the TCP protocol (AF_INET or AF_INET6), checked on every call (an fd number is reused for
 * pipes, eventfds and files); everything else passes through untouched.
 *
 *   CATZILLA_WRITE_FAULTS=<seed>           turn it on
 *   CATZILLA_WRITE_FAULTS_EAGAIN=<percent> the chance of EAGAIN, on a non-blocking socket or a
 *                                          call with MSG_DONTWAIT only (default 20)
 *   CATZILLA_WRITE_FAULTS_SHORT=<percent>  the chance of a short write: the length asked for is
 *                                          cut to a random 1..n-1 bytes (default 30)
 *   CATZILLA_WRITE_FAULTS_COUNTS=<path>    a file of counters shared by every process of the
 *                                          run (mapped MAP_SHARED: counts survive fork, _exit
 *                                          and SIGKILL); layout below
 *
 * An injected EAGAIN writes nothing; a short write writes what the real call takes of the cut
 * request. Each thread draws from its own xorshift64* generator, seeded from the seed and the
 * order in which threads first write to a TCP socket.
 *
 * The counts file: 8 bytes of magic "CZWFLT01", then uint64 counters (native byte order)
 * c[kind][origin][what], kind in WF_KINDS order, origin the object that made the call (the
 * libuv inside uvloop, catzilla's _core extension, anything else), what = calls on a TCP
 * socket, short writes injected, EAGAINs injected.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { K_WRITE, K_WRITEV, K_SEND, K_SENDTO, K_SENDMSG, K_SENDFILE, K_SENDFILE64, NKINDS };
enum { O_LIBUV, O_CATZILLA, O_OTHER, NORIGINS };
enum { W_CALLS, W_SHORT, W_EAGAIN, NWHAT };

#define WF_MAGIC "CZWFLT01"
#define SHORT_IOV_MAX 64

struct wf_counts {
    char magic[8];
    uint64_t c[NKINDS][NORIGINS][NWHAT];
};

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *,
                              socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_sendfile)(int, int, off_t *, size_t);
static ssize_t (*real_sendfile64)(int, int, off64_t *, size_t);

static int active;
static uint64_t seed;
static unsigned eagain_permille = 200, short_permille = 300;
static struct wf_counts *counts;
static struct wf_counts local_counts;   /* when no counts file is named */
static unsigned next_thread;

static __thread uint64_t rng __attribute__((tls_model("initial-exec")));

static void resolve(void) {
    if (real_write != NULL)
        return;
    real_write = dlsym(RTLD_NEXT, "write");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_send = dlsym(RTLD_NEXT, "send");
    real_sendto = dlsym(RTLD_NEXT, "sendto");
    real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
    real_sendfile = dlsym(RTLD_NEXT, "sendfile");
    real_sendfile64 = dlsym(RTLD_NEXT, "sendfile64");
    if (real_sendfile64 == NULL)
        real_sendfile64 = (ssize_t (*)(int, int, off64_t *, size_t))real_sendfile;
}

static unsigned percent_env(const char *name, unsigned dflt) {
    const char *v = getenv(name);
    double p;
    char *end;
    if (v == NULL || *v == 0)
        return dflt * 10;
    p = strtod(v, &end);
    if (end == v || p < 0 || p > 100)
        return dflt * 10;
    return (unsigned)(p * 10 + 0.5);
}

static struct wf_counts *map_counts(const char *path) {
    struct stat st;
    void *p;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || ((size_t)st.st_size < sizeof(struct wf_counts)
                               && ftruncate(fd, sizeof(struct wf_counts)) < 0)) {
        close(fd);
        return NULL;
    }
    p = mmap(NULL, sizeof(struct wf_counts), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(((struct wf_counts *)p)->magic, WF_MAGIC, 8);
    return p;
}

__attribute__((constructor)) static void wf_init(void) {
    const char *s = getenv("CATZILLA_WRITE_FAULTS");
    const char *path;
    resolve();
    if (s == NULL || *s == 0)
        return;
    seed = strtoull(s, NULL, 0);
    eagain_permille = percent_env("CATZILLA_WRITE_FAULTS_EAGAIN", 20);
    short_permille = percent_env("CATZILLA_WRITE_FAULTS_SHORT", 30);
    path = getenv("CATZILLA_WRITE_FAULTS_COUNTS");
    counts = (path != NULL && *path) ? map_counts(path) : NULL;
    if (counts == NULL)
        counts = &local_counts;
    active = 1;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t next_random(void) {
    uint64_t x = rng;
    if (x == 0) {
        unsigned t = __atomic_fetch_add(&next_thread, 1, __ATOMIC_RELAXED);
        x = splitmix64(seed ^ ((uint64_t)t << 32)) | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A TCP socket (so SOCK_STREAM) of AF_INET or AF_INET6: one getsockopt for anything that
   is not a socket (ENOTSOCK), two for a socket. */
static int is_tcp(int fd) {
    int v;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 || v != IPPROTO_TCP)
        return 0;
    len = sizeof(v);
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0
           && (v == AF_INET || v == AF_INET6);
}

static int may_refuse(int fd, int flags) {
    int fl;
    if (flags & MSG_DONTWAIT)
        return 1;
    fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* Which object called: the last two parts of its path, uvloop/loop.* or catzilla/_core.*. */
static int origin_of(void *addr) {
    Dl_info info;
    const char *f, *base, *dir;
    size_t n;
    if (addr == NULL || dladdr(addr, &info) == 0 || info.dli_fname == NULL)
        return O_OTHER;
    f = info.dli_fname;
    base = strrchr(f, '/');
    if (base == NULL)
        return O_OTHER;
    for (dir = base; dir > f && dir[-1] != '/'; dir--)
        ;
    n = (size_t)(base - dir);
    base++;
    if (n == 6 && memcmp(dir, "uvloop", 6) == 0 && strncmp(base, "loop.", 5) == 0)
        return O_LIBUV;
    if (n == 8 && memcmp(dir, "catzilla", 8) == 0 && strncmp(base, "_core.", 6) == 0)
        return O_CATZILLA;
    return O_OTHER;
}

static void count(int kind, int origin, int what) {
    __atomic_fetch_add(&counts->c[kind][origin][what], 1, __ATOMIC_RELAXED);
}

enum { PASS, REFUSE, CUT };

/* What to do with a write of len bytes: PASS, REFUSE (EAGAIN) or CUT (*cut bytes). Keeps
   errno as it was. */
static int decide(int kind, void *caller, int fd, int flags, size_t len, size_t *cut) {
    int saved = errno, origin, verdict = PASS;
    if (!active || len == 0 || !is_tcp(fd)) {
        errno = saved;
        return PASS;
    }
    origin = origin_of(caller);
    count(kind, origin, W_CALLS);
    if ((next_random() >> 16) % 1000 < eagain_permille && may_refuse(fd, flags)) {
        count(kind, origin, W_EAGAIN);
        verdict = REFUSE;
    } else if (len > 1 && (next_random() >> 16) % 1000 < short_permille) {
        uint64_t r2 = next_random();
        size_t most = len - 1;
        if ((r2 & 3) == 0 && most > 16)
            most = 16;   /* often a few bytes: cuts inside a chunk's framing */
        *cut = 1 + (size_t)((r2 >> 2) % most);
        count(kind, origin, W_SHORT);
        verdict = CUT;
    }
    errno = saved;
    return verdict;
}

static size_t iov_total(const struct iovec *iov, int n) {
    size_t t = 0;
    int i;
    for (i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Copy the iovecs that hold the first cut bytes into out (SHORT_IOV_MAX at most, the last
   one shortened); returns how many. */
static int iov_cut(const struct iovec *iov, int n, size_t cut, struct iovec *out) {
    int k = 0;
    while (k < n && k < SHORT_IOV_MAX && cut > 0) {
        out[k] = iov[k];
        if (out[k].iov_len > cut)
            out[k].iov_len = cut;
        cut -= out[k].iov_len;
        k++;
    }
    return k;
}

#define CALLER __builtin_return_address(0)

/* (a call before our constructor has run: another preloaded object's constructor) */
#define RESOLVED(fn) (fn != NULL ? fn : (resolve(), fn))

ssize_t write(int fd, const void *buf, size_t n) {
    size_t cut;
    switch (decide(K_WRITE, CALLER, fd, 0, n, &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT: return RESOLVED(real_write)(fd, buf, cut);
    }
    return RESOLVED(real_write)(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    struct iovec part[SHORT_IOV_MAX];
    size_t cut;
    if (iovcnt <= 0)
        return RESOLVED(real_writev)(fd, iov, iovcnt);
    switch (decide(K_WRITEV, CALLER, fd, 0, iov_total(iov, iovcnt), &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT: return RESOLVED(real_writev)(fd, part, iov_cut(iov, iovcnt, cut, part));
    }
    return RESOLVED(real_writev)(fd, iov, iovcnt);
}

ssize_t send(int fd, const void *buf, size_t n, int flags) {
    size_t cut;
    switch (decide(K_SEND, CALLER, fd, flags, n, &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT: return RESOLVED(real_send)(fd, buf, cut, flags);
    }
    return RESOLVED(real_send)(fd, buf, n, flags);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
               socklen_t alen) {
    size_t cut;
    switch (decide(K_SENDTO, CALLER, fd, flags, n, &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT: return RESOLVED(real_sendto)(fd, buf, cut, flags, addr, alen);
    }
    return RESOLVED(real_sendto)(fd, buf, n, flags, addr, alen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    struct iovec part[SHORT_IOV_MAX];
    struct msghdr m;
    size_t cut;
    if (msg == NULL || msg->msg_iovlen == 0)
        return RESOLVED(real_sendmsg)(fd, msg, flags);
    switch (decide(K_SENDMSG, CALLER, fd, flags, iov_total(msg->msg_iov, (int)msg->msg_iovlen),
                   &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT:
        m = *msg;
        m.msg_iov = part;
        m.msg_iovlen = (size_t)iov_cut(msg->msg_iov, (int)msg->msg_iovlen, cut, part);
        return RESOLVED(real_sendmsg)(fd, &m, flags);
    }
    return RESOLVED(real_sendmsg)(fd, msg, flags);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t n) {
    size_t cut;
    switch (decide(K_SENDFILE, CALLER, out_fd, 0, n, &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT: return RESOLVED(real_sendfile)(out_fd, in_fd, offset, cut);
    }
    return RESOLVED(real_sendfile)(out_fd, in_fd, offset, n);
}

ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t n) {
    size_t cut;
    switch (decide(K_SENDFILE64, CALLER, out_fd, 0, n, &cut)) {
    case REFUSE: errno = EAGAIN; return -1;
    case CUT: return RESOLVED(real_sendfile64)(out_fd, in_fd, offset, cut);
    }
    return RESOLVED(real_sendfile64)(out_fd, in_fd, offset, n);
}
