# A local stand-in for gcr.io/distroless/cc-debian12:nonroot, for machines
# that cannot pull it (scripts/base-images.sh builds it only then).
# Like the original it is assembled FROM scratch out of Debian 12 packages:
# glibc, libgcc, libstdc++, OpenSSL's libraries, CA certificates and time
# zones, with the users root, nobody and nonroot (65532); no shell, no
# package manager.
FROM debian:bookworm-slim AS packages
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && mkdir -p /debs /rootfs && cd /debs \
    && apt-get download libc6 libgcc-s1 libstdc++6 libssl3 tzdata netbase \
    && for deb in /debs/*.deb; do dpkg-deb -x "$deb" /rootfs; done \
    && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/man /rootfs/usr/share/lintian /rootfs/usr/share/info
RUN cd /rootfs \
    && mkdir -p etc/ssl/certs tmp home/nonroot root var/lib \
    && cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/ \
    && cp /etc/os-release usr/lib/os-release && ln -sf ../usr/lib/os-release etc/os-release \
    && chmod 1777 tmp && chown 65532:65532 home/nonroot && chmod 700 root \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >etc/passwd \
    && printf 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n' >etc/group \
    && printf 'hosts: files dns\n' >etc/nsswitch.conf \
    && ln -sf ../usr/share/zoneinfo/UTC etc/localtime

FROM scratch
COPY --from=packages /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
