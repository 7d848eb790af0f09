/* Self-check server for the load generator: every connection gets a chunked text/event-stream
 * response and then pre-formatted SSE events, as fast as the socket takes them, each carrying
 * "ts" (refreshed per write). Runs for --duration seconds, one epoll loop, then exits.
 *
 * usage: blaster --port P --duration S
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_PER_CHUNK 256

static double now(int clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int port = 0;
    double duration = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 4096)) {
        perror("bind/listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    static char chunk[65536];
    double end = now(CLOCK_MONOTONIC) + duration, stamp = 0;
    size_t chunk_len = 0;
    struct epoll_event evs[512];
    while (now(CLOCK_MONOTONIC) < end) {
        int n = epoll_wait(ep, evs, 512, 50);
        double t = now(CLOCK_REALTIME);
        if (t - stamp > 0.001) {  /* re-format the chunk with a fresh timestamp */
            char body[60000];
            size_t bl = 0;
            for (int k = 0; k < EVENTS_PER_CHUNK; k++)
                bl += snprintf(body + bl, sizeof body - bl, "data: {\"seq\": %d, \"ts\": %.6f}\n\n",
                               k, t);
            chunk_len = snprintf(chunk, sizeof chunk, "%zx\r\n", bl);
            memcpy(chunk + chunk_len, body, bl);
            chunk_len += bl;
            memcpy(chunk + chunk_len, "\r\n", 2);
            chunk_len += 2;
            stamp = t;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == ls) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    char req[4096];
                    ssize_t r = read(fd, req, sizeof req);  /* the request, usually here already */
                    (void)r;
                    if (write(fd, head, sizeof head - 1) < 0) { close(fd); continue; }
                    struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            int fd = evs[i].data.fd;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) { close(fd); continue; }
            /* one whole chunk per wake-up: a partial write would break the framing */
            ssize_t w = send(fd, chunk, chunk_len, MSG_DONTWAIT);
            if (w >= 0 && (size_t)w < chunk_len) {
                size_t off = w;
                while (off < chunk_len) {
                    w = send(fd, chunk + off, chunk_len - off, 0);
                    if (w < 0 && errno != EAGAIN) break;
                    if (w > 0) off += w;
                }
            }
            if (w < 0 && errno != EAGAIN) close(fd);
        }
    }
    return 0;
}
