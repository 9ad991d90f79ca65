import sys, yenc, zlib
data = sys.stdin.buffer.read()
name = sys.argv[1]
e = yenc.Encoder()
e.feed(data)
enc = e.getEncoded()
if not enc.endswith(b"\r\n"):
    enc += b"\r\n"
sys.stdout.buffer.write(b"=ybegin line=128 size=%d name=%s\r\n" % (len(data), name.encode()) + enc +
                        b"=yend size=%d crc32=%08x\r\n" % (len(data), zlib.crc32(data)))
