"""A grammar of HTTP/1.1 request streams for tests/test_parse_differential.py: mostly
ordinary requests, with a share of odd methods, targets, versions, header lines, bodies and
chunk framing, and 1-4 requests pipelined in one stream. Written for a differential fuzz of
our request parsing (fast path against llhttp, one read against several)."""
from __future__ import annotations

import random

METHODS_COMMON = [b"GET"] * 8 + [b"HEAD"] * 3 + [b"POST"] * 4
METHODS_ODD = [b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE", b"PURGE",
               b"FOO", b"get", b"GETX", b"G", b"M-SEARCH", b"PRI", b"SOURCE", b"QUERY",
               b"", b"GET\t", b"\x00GET", b"G\xffT", b"LINK", b"PROPFIND", b"ACL",
               b"X" * 40]

PATH_CHARS = b"abcxyz019-._~!$&'()*+,;=:@/%"
TARGETS_ODD = [b"*", b"http://h/x?y=1", b"HTTP://h", b"https://h:80/p", b"http://u@h/",
               b"h:80", b"//x", b"/?", b"/??a", b"/a#frag", b"/a b", b"/\x7f", b"/\xff",
               b"/\xc3\xa9", b"/a\tb", b"", b"x", b"/%", b"/%zz", b"/%00", b"/..%2f..",
               b"http://h?q", b"ftp://h/", b"http://", b"/a?b#c", b"/\"<>{}|^`",
               b"/async/x", b"/stream/y", b"/async", b"/stream/", b"\\a"]
VERSIONS = [b"HTTP/1.1"] * 12 + [b"HTTP/1.0"] * 3 + [
    b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.10", b"HTTP/1", b"http/1.1",
    b"HTTP/1.1 ", b"", b"HTTP/3.0", b"HTTP/9.9", b"HTTP/1.x", b"HTTPS/1.1", b"HTTP /1.1",
    b"HTTP/01.1", b"HTTP/1.1\t"]
HOSTS = [b"h"] * 6 + [b"h:80", b"[::1]:8080", b"", b"h h", b"h:", b"h:x", b"127.0.0.1",
                      b"%41", b"%4", b"h\t", b"[::1", b"h_x.y-z~", b"h@x", b"\xffh",
                      b"[v1.x]", b"h:80:90", b"*"]
CONN = [b"close", b"keep-alive", b"Close", b"KEEP-ALIVE", b"upgrade", b"close, foo",
        b"keep-alive, close", b"", b"foo", b"Upgrade, Keep-Alive", b"close ", b"te",
        b"keep-alive,close", b"clos"]
CL = [b"0", b"3", b"5", b"3, 3", b"+3", b" 3", b"03", b"-1", b"abc", b"99999999999999999999",
      b"3 ", b"0x3", b"", b"4000", b"1_0", b"2048", b"2049"]
TE = [b"chunked", b"gzip, chunked", b"chunked, gzip", b"Chunked", b"identity", b"chunked ",
      b"gzip", b"chunked, chunked", b",chunked", b"chunked;q=1", b"xchunked", b"", b"\tchunked"]
EXPECT = [b"100-continue", b"100-Continue", b"foo", b"", b"100-continue, foo"]
UPGRADE = [b"websocket", b"h2c", b"", b"foo/1"]
OTHER_NAMES = [b"X-A", b"Accept", b"Cookie", b"User-Agent", b"x-b", b"Keep-Alive",
               b"Proxy-Connection", b"TE", b"Trailer", b"Content-Type", b"Last-Event-ID"]
VALUES = [b"v", b"a b", b"a\tb", b"", b" ", b"v ", b" v", b"\tv", b"v\t", b"\xe9", b"a\x7fb",
          b"a\x00b", b"a\rb", b"a\nb", b"\"q\"", b"x" * 50, b"a,b", b"a;b=c", b"close"]
SEPS = [b": "] * 10 + [b":", b":  ", b" :", b":\t", b"\t:", b": \t", b"::"]
# between the parts of a request line: one SP, else a 400 (RFC 9112 3), however it is split
LINE_SEPS_ODD = [b"  ", b"\t", b"", b"   ", b" \t", b"\x0b", b"\x0c", b"\r"]
LINE_ENDS_ODD = [b" ", b"\t", b"\r", b"\x0c"]   # (before its CRLF)
# before a request line: empty lines are skipped; whitespace or a bare CR gets 400
LEADS = [b"\r\n", b"\r\n\r\n", b"\n"] * 3 + [b" ", b"\t", b"\r", b"\r\r\n", b"\n\r", b"\r\n "]


def rand_bytes(rng, n, alphabet=None):
    if alphabet is None:
        return bytes(rng.randrange(256) for _ in range(n))
    return bytes(rng.choice(alphabet) for _ in range(n))


class Gen:
    def __init__(self, rng: random.Random, max_url=256, max_header=1024, max_headers=12,
                 max_body=2048):
        self.rng = rng
        self.max_url = max_url
        self.max_header = max_header
        self.max_headers = max_headers
        self.max_body = max_body
        self.odd = 0.1

    def method(self):
        r = self.rng
        if not getattr(self, "first", True):
            # behind another request only methods we route (see the test's module docstring)
            return r.choice(METHODS_COMMON + [b"PUT", b"DELETE", b"OPTIONS", b"PATCH"])
        return r.choice(METHODS_COMMON) if r.random() >= self.odd else r.choice(METHODS_ODD)

    def target(self):
        r = self.rng
        x = r.random()
        if x < 1 - self.odd * 2:
            prefix = r.choice([b"/", b"/", b"/async/", b"/stream/", b"/a/"])
            t = prefix + rand_bytes(r, r.randrange(0, 12), PATH_CHARS)
            if r.random() < 0.3:
                t += b"?" + rand_bytes(r, r.randrange(0, 10), PATH_CHARS + b"?")
            return t
        if x < 1 - self.odd / 2:
            return r.choice(TARGETS_ODD)
        # near the url limit
        n = self.max_url + r.randrange(-3, 4) - 1
        return b"/" + b"u" * max(0, n)

    def header(self, name, value):
        r = self.rng
        sep = r.choice(SEPS) if r.random() < self.odd else b": "
        return name + sep + value

    def head_lines(self, method):
        r = self.rng
        lines = []
        body_kind = None
        # Host
        x = r.random()
        if x < 1 - self.odd:
            lines.append(self.header(r.choice([b"Host", b"host", b"HOST"]),
                                     r.choice(HOSTS) if r.random() < self.odd * 2 else b"h"))
        if r.random() < self.odd / 3:
            lines.append(self.header(b"Host", r.choice(HOSTS)))
        nextra = r.choice([0, 0, 1, 1, 2, 3, 5])
        for _ in range(nextra):
            y = r.random()
            if y < 0.2:
                lines.append(self.header(b"Connection", r.choice(CONN)))
            elif y < 0.3:
                lines.append(self.header(r.choice([b"Content-Length", b"content-length"]),
                                         r.choice(CL)))
                body_kind = "cl"
            elif y < 0.38:
                lines.append(self.header(b"Transfer-Encoding", r.choice(TE)))
                body_kind = "te"
            elif y < 0.43:
                lines.append(self.header(b"Expect", r.choice(EXPECT)))
            elif y < 0.48:
                lines.append(self.header(b"Upgrade", r.choice(UPGRADE)))
                if r.random() < 0.7:
                    lines.append(self.header(b"Connection", r.choice(
                        [b"upgrade", b"Upgrade, close", b"keep-alive, upgrade"])))
            elif y < 0.52:
                # obs-fold
                lines.append(self.header(b"X-Fold", b"a"))
                lines.append(r.choice([b" b", b"\tb", b" ", b"  c d"]))
            elif y < 0.55:
                lines.append(self.header(
                    b"X-Long", b"L" * (self.max_header + r.randrange(-60, 10))))
            elif y < 0.57:
                for i in range(self.max_headers + r.randrange(-2, 2)):
                    lines.append(self.header(b"X-%d" % i, b"v"))
            elif y < 0.57 + self.odd / 2:
                lines.append(r.choice([b"X-A", b"", b": v", b"X A: v", b"X\x00: v",
                                       b"X-\xff: v", b"X-(: v", b"X-A:v\r", b"\x7fX: v"]))
            else:
                value = (r.choice(VALUES) if r.random() < self.odd * 3
                         else r.choice(VALUES[:3]))
                lines.append(self.header(r.choice(OTHER_NAMES), value))
        if method in (b"POST", b"PUT", b"PATCH") and body_kind is None and r.random() < 0.7:
            if r.random() < 0.6:
                lines.append(self.header(b"Content-Length", b"3"))
                body_kind = "cl"
            else:
                lines.append(self.header(b"Transfer-Encoding", b"chunked"))
                body_kind = "te"
        r.shuffle(lines) if r.random() < 0.3 else None
        return lines, body_kind

    def body(self, lines, kind):
        r = self.rng
        if kind == "cl":
            cl = None
            for line in lines:
                if line.lower().startswith(b"content-length"):
                    v = line.split(b":", 1)[1].strip()
                    try:
                        cl = int(v)
                    except ValueError:
                        pass
            if cl is None or cl > 5000:
                return b"" if r.random() < 0.7 else b"abc"
            n = cl + (0 if r.random() < 0.85 else r.choice([-1, 1, 5]))
            return rand_bytes(r, max(0, n), b"abcdef\r\n0 ")
        if kind == "te":
            chunks = []
            for _ in range(r.randrange(0, 3)):
                data = rand_bytes(r, r.randrange(1, 8), b"abcxyz\r\n")
                size = b"%x" % len(data)
                if r.random() < 0.1:
                    size = r.choice([b"0" + size, size.upper(), size + b";ext=1",
                                     size + b';e="q"', size + b" ;e", size + b";" + b"e" * 300,
                                     size + b" ", size + b";", b"-1", b"g", b"", b"0x" + size,
                                     b"fffffffffffffffffff"])
                eol = b"\r\n" if r.random() < 0.93 else r.choice([b"\n", b"\r", b"", b"x\r\n"])
                chunks.append(size + b"\r\n" + data + eol)
            last = b"0\r\n"
            if r.random() < 0.15:
                last = r.choice([b"0;x=y\r\n", b"00\r\n", b"0\n", b"0 \r\n"])
            trailer = b""
            if r.random() < 0.15:
                trailer = r.choice([b"T: v\r\n", b"Content-Length: 5\r\n", b"T v\r\n",
                                    b"Host: x\r\n", b"T: " + b"t" * self.max_header + b"\r\n"])
            end = b"\r\n" if r.random() < 0.95 else r.choice([b"", b"\n", b"x"])
            return b"".join(chunks) + last + trailer + end
        return b""

    def request(self):
        r = self.rng
        m = self.method()
        t = self.target()
        v = (r.choice(VERSIONS) if r.random() < self.odd * 2
             else r.choice([b"HTTP/1.1"] * 4 + [b"HTTP/1.0"]))
        eol = b"\r\n" if r.random() >= self.odd / 2 else b"\n"
        sp = b" " if r.random() >= self.odd / 3 else r.choice(LINE_SEPS_ODD)
        sp2 = b" " if r.random() >= self.odd / 6 else r.choice(LINE_SEPS_ODD)
        line = m + sp + t + (sp2 + v if v or r.random() < 0.5 else b"")
        if r.random() < self.odd / 6:
            line += r.choice(LINE_ENDS_ODD)
        lines, kind = self.head_lines(m)
        head = line + eol + b"".join(field + eol for field in lines) + eol
        if r.random() < 0.03:
            head = r.choice(LEADS) + head
        return head + self.body(lines, kind)

    def stream(self):
        r = self.rng
        self.odd = r.choice([0.0, 0.02, 0.05, 0.1, 0.2])
        n = r.choice([1, 1, 2, 2, 3, 4])
        reqs = []
        for i in range(n):
            self.first = i == 0
            reqs.append(self.request())
        data = b"".join(reqs)
        if r.random() < 0.05:
            data += r.choice([b"\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n", b"GET /"])
        return data


def split(rng: random.Random, data: bytes):
    if len(data) < 2:
        return [data]
    k = rng.randrange(2, 7)
    cuts = sorted(set(rng.randrange(1, len(data)) for _ in range(k - 1)))
    parts = []
    prev = 0
    for c in cuts:
        parts.append(data[prev:c])
        prev = c
    parts.append(data[prev:])
    return parts
