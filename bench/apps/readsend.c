/* A plain read-and-send download server in C: no framework, no Python.
 *
 *   readsend PORT FILE
 *
 * Serves FILE to every GET with Content-Length, one connection at a time: read() 64 KiB from the
 * file, send() it, repeat. The same two copies as a generator download, at no interpreter cost.
 * Used by bench/download_bound.py.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

static char buf[CHUNK];

static int send_all(int s, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(s, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one request head (up to the blank line); 0 on success, -1 on EOF or error. */
static int read_head(int c, char *req, size_t cap, size_t *have) {
    for (;;) {
        char *end = memmem(req, *have, "\r\n\r\n", 4);
        if (end) {
            size_t used = (size_t)(end + 4 - req);
            memmove(req, end + 4, *have - used);
            *have -= used;
            return 0;
        }
        if (*have == cap)
            return -1;
        ssize_t n = recv(c, req + *have, cap - *have, 0);
        if (n <= 0)
            return -1;
        *have += (size_t)n;
    }
}

static void serve(int c, const char *path) {
    static char req[16384];
    size_t have = 0;
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (read_head(c, req, sizeof req, &have) == 0) {
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            return;
        char head[160];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: %lld\r\n\r\n", (long long)st.st_size);
        int ok = send_all(c, head, (size_t)hl) == 0;
        ssize_t n;
        while (ok && (n = read(fd, buf, sizeof buf)) > 0)
            ok = send_all(c, buf, (size_t)n) == 0;
        close(fd);
        if (!ok)
            return;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT FILE\n", argv[0]);
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0) {
        perror("readsend");
        return 1;
    }
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0)
            continue;
        serve(c, argv[2]);
        close(c);
    }
}
