/* Streaming load generator: one epoll loop, many HTTP/1.1 connections to 127.0.0.1.
 *
 * Each connection sends one request, parses the response (status, Content-Length or chunked
 * framing, or read-until-close) and feeds the decoded body to a counter:
 *   --mode sse    events (a blank line ends an event with a data: line), ": " comment lines
 *                 (heartbeats), and the publish-to-receive latency of events whose data carries
 *                 "ts": <unix seconds> (CLOCK_REALTIME on both sides: same host)
 *   --mode lines  newline-terminated lines (NDJSON records)
 *   --mode bytes  body bytes
 * Prints "READY <n>" once every connection has its response headers (or --ready-timeout passed),
 * and at the end one JSON line with the totals. Stops after --duration seconds, or earlier when
 * every connection has finished its response, or on SIGTERM (the totals are printed either way).
 *
 * build: gcc -O2 -o loadgen loadgen.c -lm
 * usage: loadgen --port P [--conns N] [--duration S] [--mode sse|lines|bytes]
 *                [--method GET] [--path /sse] [--ready-timeout S]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MODE_SSE, MODE_LINES, MODE_BYTES };
enum { S_CONNECTING, S_HEADERS, S_CL, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER,
       S_EOF, S_DONE };

#define HDR_MAX 16384
#define LINE_MAX_KEEP 512

typedef struct {
    int fd, state, status, got_headers;
    size_t sent;
    long long remaining;  /* Content-Length or current chunk */
    char hdr[HDR_MAX];
    size_t hdr_len;
    char line[LINE_MAX_KEEP];  /* SSE: the current line, truncated */
    size_t line_len;
    int event_has_data;
    double event_ts;
    int chunk_hex_started, in_ext;
} conn_t;

static int mode = MODE_SSE;
static long long n_events, n_comments, n_lines, n_bytes, n_completed, n_errors, n_non200;
static long long n_connected, n_headers, n_closed_early;
static float *lat;  /* ms */
static size_t lat_n, lat_cap;
static volatile sig_atomic_t stop;
static char request[1024];
static size_t request_len;

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_real(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add_latency(double ms) {
    if (lat_n == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
        lat = realloc(lat, lat_cap * sizeof *lat);
        if (!lat) { perror("realloc"); exit(2); }
    }
    lat[lat_n++] = (float)ms;
}

static void sse_line_done(conn_t *c) {
    char *l = c->line;
    size_t n = c->line_len;
    if (n && l[n - 1] == '\r') n--;
    if (n == 0) {  /* blank line: dispatch */
        if (c->event_has_data) {
            n_events++;
            if (c->event_ts > 0) add_latency((now_real() - c->event_ts) * 1e3);
        }
        c->event_has_data = 0;
        c->event_ts = 0;
    } else if (l[0] == ':') {
        n_comments++;
    } else if (n >= 5 && memcmp(l, "data:", 5) == 0) {
        c->event_has_data = 1;
        l[n < LINE_MAX_KEEP ? n : LINE_MAX_KEEP - 1] = 0;
        char *p = strstr(l, "\"ts\":");
        if (p) c->event_ts = strtod(p + 5, NULL);
    }
    c->line_len = 0;
}

static void body(conn_t *c, const char *p, size_t n) {
    n_bytes += n;
    if (mode == MODE_LINES) {
        for (const char *q = p; (q = memchr(q, '\n', p + n - q)); q++) n_lines++;
    } else if (mode == MODE_SSE) {
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '\n') sse_line_done(c);
            else if (c->line_len < LINE_MAX_KEEP - 1) c->line[c->line_len++] = p[i];
        }
    }
}

static int parse_headers(conn_t *c) {
    c->hdr[c->hdr_len] = 0;
    char *end = strstr(c->hdr, "\r\n\r\n");
    if (!end) return c->hdr_len >= HDR_MAX - 1 ? -1 : 0;
    size_t consumed = end + 4 - c->hdr;
    c->status = atoi(c->hdr + 9);
    if (c->status != 200) n_non200++;
    c->got_headers = 1;
    n_headers++;
    c->state = S_EOF;
    for (char *h = strstr(c->hdr, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        char *v = h + 2;
        if (strncasecmp(v, "content-length:", 15) == 0) {
            c->remaining = atoll(v + 15);
            c->state = c->remaining ? S_CL : S_DONE;
        } else if (strncasecmp(v, "transfer-encoding:", 18) == 0 &&
                   strcasestr(v, "chunked") && strcasestr(v, "chunked") < strstr(v, "\r\n")) {
            c->state = S_CHUNK_SIZE;
            c->remaining = 0;
            c->chunk_hex_started = 0;
        }
    }
    return (int)consumed;
}

/* feed received bytes through the framing state machine; returns -1 on protocol error */
static int feed(conn_t *c, const char *p, size_t n) {
    while (n && c->state != S_DONE) {
        switch (c->state) {
        case S_HEADERS: {
            size_t take = n < HDR_MAX - 1 - c->hdr_len ? n : HDR_MAX - 1 - c->hdr_len;
            size_t before = c->hdr_len;
            memcpy(c->hdr + c->hdr_len, p, take);
            c->hdr_len += take;
            int used = parse_headers(c);
            if (used < 0) return -1;
            if (used == 0) { p += take; n -= take; break; }
            size_t from_this = used - before;
            p += from_this;
            n -= from_this;
            break;
        }
        case S_CL: {
            size_t take = (long long)n < c->remaining ? n : (size_t)c->remaining;
            body(c, p, take);
            p += take; n -= take; c->remaining -= take;
            if (!c->remaining) c->state = S_DONE;
            break;
        }
        case S_EOF:
            body(c, p, n);
            n = 0;
            break;
        case S_CHUNK_SIZE: {  /* hex size, optional ;extensions, CRLF */
            char ch = *p++; n--;
            int d = (ch >= '0' && ch <= '9') ? ch - '0'
                    : ((ch | 32) >= 'a' && (ch | 32) <= 'f') ? (ch | 32) - 'a' + 10 : -1;
            if (ch == '\n') {
                if (!c->chunk_hex_started) return -1;
                c->state = c->remaining ? S_CHUNK_DATA : S_TRAILER;
                c->hdr_len = 0;  /* reused as the trailer line length */
                c->in_ext = 0;
            } else if (c->in_ext || ch == '\r' || ch == ' ' || ch == '\t') {
            } else if (ch == ';') {
                c->in_ext = 1;
            } else if (d >= 0) {
                c->remaining = c->remaining * 16 + d;
                c->chunk_hex_started = 1;
            } else {
                return -1;
            }
            break;
        }
        case S_CHUNK_DATA: {
            size_t take = (long long)n < c->remaining ? n : (size_t)c->remaining;
            body(c, p, take);
            p += take; n -= take; c->remaining -= take;
            if (!c->remaining) { c->state = S_CHUNK_CRLF; c->hdr_len = 0; }
            break;
        }
        case S_CHUNK_CRLF: {
            char ch = *p++; n--;
            if (ch == '\n') { c->state = S_CHUNK_SIZE; c->remaining = 0; c->chunk_hex_started = 0; }
            else if (ch != '\r') return -1;
            break;
        }
        case S_TRAILER: {
            char ch = *p++; n--;
            if (ch == '\n') {
                if (c->hdr_len == 0) c->state = S_DONE;
                c->hdr_len = 0;
            } else if (ch != '\r') {
                c->hdr_len++;
            }
            break;
        }
        }
    }
    return 0;
}

static int open_conn(conn_t *c, int ep, struct sockaddr_in *addr) {
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) { n_errors++; c->state = S_DONE; return -1; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
        n_errors++; close(c->fd); c->fd = -1; c->state = S_DONE; return -1;
    }
    c->state = S_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void finish(conn_t *c, int ep, int completed) {
    if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
    if (completed) n_completed++;
    else if (c->state != S_DONE) n_closed_early++;
    c->state = S_DONE;
}

static void on_term(int sig) { (void)sig; stop = 1; }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int port = 0, nconns = 1;
    double duration = 10, ready_timeout = 30;
    const char *method = "GET", *path = "/";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--conns")) nconns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ready-timeout")) ready_timeout = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--method")) method = argv[i + 1];
        else if (!strcmp(argv[i], "--path")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--mode")) {
            mode = !strcmp(argv[i + 1], "lines") ? MODE_LINES
                 : !strcmp(argv[i + 1], "bytes") ? MODE_BYTES : MODE_SSE;
        } else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (!port) { fprintf(stderr, "--port is required\n"); return 2; }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    request_len = snprintf(request, sizeof request,
                           "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: */*\r\n"
                           "Content-Length: 0\r\n\r\n", method, path, port);
    signal(SIGTERM, on_term);  /* SIGTERM/SIGINT: stop and print the totals */
    signal(SIGINT, on_term);
    conn_t *conns = calloc(nconns, sizeof *conns);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ep = epoll_create1(0);
    double t0 = now_mono(), deadline = t0 + duration, ready_at = -1;
    int opened = 0, ready_printed = 0, open_now = 0;
    struct epoll_event evs[512];
    static char buf[1 << 18];
    for (;;) {
        /* open connections in batches so a listen backlog is not flooded at once */
        for (int k = 0; k < 256 && opened < nconns; k++, opened++)
            if (open_conn(&conns[opened], ep, &addr) == 0) open_now++;
        double t = now_mono();
        if (!ready_printed && opened == nconns &&
            (n_headers + n_errors + n_closed_early >= nconns || t - t0 > ready_timeout)) {
            printf("READY %lld\n", n_headers);
            fflush(stdout);
            ready_printed = 1;
            ready_at = t;
        }
        if (stop || t >= deadline || (opened == nconns && open_now == 0)) break;
        int ms = (int)((deadline - t) * 1000) + 1;
        int n = epoll_wait(ep, evs, 512, opened < nconns ? 0 : (ms < 50 ? ms : 50));
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->state == S_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) { n_errors++; finish(c, ep, 0); open_now--; continue; }
                if (evs[i].events & EPOLLOUT) {
                    ssize_t w = write(c->fd, request + c->sent, request_len - c->sent);
                    if (w > 0) c->sent += w;
                    if (c->sent == request_len) {
                        n_connected++;
                        c->state = S_HEADERS;
                        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    }
                    continue;
                }
            }
            for (int reads = 0; reads < 4; reads++) {  /* bounded: fairness across conns */
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r > 0) {
                    if (feed(c, buf, r) < 0) { n_errors++; finish(c, ep, 0); open_now--; break; }
                    if (c->state == S_DONE) { finish(c, ep, 1); open_now--; break; }
                    if (r < (ssize_t)sizeof buf) break;
                } else if (r == 0) {
                    int ok = c->state == S_EOF;
                    if (mode == MODE_SSE && c->line_len) sse_line_done(c);
                    finish(c, ep, ok); open_now--;
                    break;
                } else {
                    if (errno == EAGAIN || errno == EINTR) break;
                    n_errors++; finish(c, ep, 0); open_now--;
                    break;
                }
            }
        }
    }
    double elapsed = now_mono() - t0;
    long long still_open = 0;
    for (int i = 0; i < nconns; i++) if (conns[i].fd >= 0) { still_open++; close(conns[i].fd); }
    double p50 = -1, p99 = -1, pmax = -1;
    if (lat_n) {
        qsort(lat, lat_n, sizeof *lat, cmp_float);
        p50 = lat[lat_n / 2];
        p99 = lat[(size_t)(lat_n * 0.99)];
        pmax = lat[lat_n - 1];
    }
    printf("{\"conns\": %d, \"connected\": %lld, \"headers\": %lld, \"non200\": %lld, "
           "\"completed\": %lld, \"closed_early\": %lld, \"still_open\": %lld, \"errors\": %lld, "
           "\"events\": %lld, \"comments\": %lld, \"lines\": %lld, \"bytes\": %lld, "
           "\"elapsed\": %.6f, \"ready_after\": %.6f, \"latencies\": %zu, \"lat_p50_ms\": %.3f, "
           "\"lat_p99_ms\": %.3f, \"lat_max_ms\": %.3f}\n",
           nconns, n_connected, n_headers, n_non200, n_completed, n_closed_early, still_open,
           n_errors, n_events, n_comments, n_lines, n_bytes, elapsed,
           ready_at < 0 ? -1.0 : ready_at - t0, lat_n, p50, p99, pmax);
    return 0;
}
