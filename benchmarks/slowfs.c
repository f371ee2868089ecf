/* slowfs: a FUSE passthrough that adds a fixed latency to every operation.
 *
 *     slowfs ROOT MOUNTPOINT LATENCY_US CACHE [fuse options...]
 *
 * Every request that reaches this daemon (lookup, getattr, open, read, readdir, flush, release...)
 * sleeps LATENCY_US microseconds before it is served from ROOT. CACHE=0 turns the kernel's
 * caching off (entry, attribute and negative timeouts 0, page cache dropped at each open);
 * CACHE=1 keeps entries and attributes for 60 s, keeps file pages and caches directory listings.
 * Built by benchmarks/slowfs.py against libfuse3.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <fuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char root[PATH_MAX];
static long latency_us;
static int cache;

static void delay(void)
{
    if (latency_us > 0) {
        struct timespec ts = {latency_us / 1000000, (latency_us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
    }
}

static void full(char *out, const char *path)
{
    snprintf(out, PATH_MAX, "%s%s", root, path);
}

#define P(name) char name[PATH_MAX]; full(name, path); delay()
#define RET(expr) return (expr) == -1 ? -errno : 0

static void *sf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = cache ? 60.0 : 0.0;
    cfg->kernel_cache = cache;
    return NULL;
}

static int sf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    delay();
    if (fi)
        RET(fstat(fi->fh, st));
    char p[PATH_MAX];
    full(p, path);
    RET(lstat(p, st));
}

static int sf_access(const char *path, int mask) { P(p); RET(access(p, mask)); }

static int sf_readlink(const char *path, char *buf, size_t size)
{
    P(p);
    ssize_t n = readlink(p, buf, size - 1);
    if (n == -1)
        return -errno;
    buf[n] = '\0';
    return 0;
}

static int sf_opendir(const char *path, struct fuse_file_info *fi)
{
    P(p);
    DIR *d = opendir(p);
    if (!d)
        return -errno;
    fi->fh = (uint64_t)(uintptr_t)d;
    fi->cache_readdir = cache;
    fi->keep_cache = cache;
    return 0;
}

static int sf_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path; (void)off; (void)flags;
    delay();
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st = {0};
        st.st_ino = e->d_ino;
        st.st_mode = (mode_t)DTTOIF(e->d_type);
        if (filler(buf, e->d_name, &st, 0, 0))
            break;
    }
    return 0;
}

static int sf_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    delay();
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int sf_mkdir(const char *path, mode_t mode) { P(p); RET(mkdir(p, mode)); }
static int sf_unlink(const char *path) { P(p); RET(unlink(p)); }
static int sf_rmdir(const char *path) { P(p); RET(rmdir(p)); }

static int sf_symlink(const char *from, const char *path) { P(p); RET(symlink(from, p)); }

static int sf_rename(const char *from, const char *to, unsigned int flags)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (flags)
        return -EINVAL;
    full(a, from); full(b, to); delay();
    RET(rename(a, b));
}

static int sf_link(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];
    full(a, from); full(b, to); delay();
    RET(link(a, b));
}

static int sf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi; P(p); RET(chmod(p, mode));
}

static int sf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    (void)fi; P(p); RET(lchown(p, uid, gid));
}

static int sf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    delay();
    if (fi)
        RET(ftruncate(fi->fh, size));
    char p[PATH_MAX];
    full(p, path);
    RET(truncate(p, size));
}

static int sf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)fi; P(p); RET(utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW));
}

static int sf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    P(p);
    int fd = open(p, fi->flags, mode);
    if (fd == -1)
        return -errno;
    fi->fh = fd;
    return 0;
}

static int sf_open(const char *path, struct fuse_file_info *fi)
{
    P(p);
    int fd = open(p, fi->flags);
    if (fd == -1)
        return -errno;
    fi->fh = fd;
    fi->keep_cache = cache;
    return 0;
}

static int sf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    delay();
    ssize_t n = pread(fi->fh, buf, size, off);
    return n == -1 ? -errno : (int)n;
}

static int sf_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    delay();
    ssize_t n = pwrite(fi->fh, buf, size, off);
    return n == -1 ? -errno : (int)n;
}

static int sf_statfs(const char *path, struct statvfs *st) { P(p); RET(statvfs(p, st)); }

static int sf_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path; (void)fi;
    delay();
    return 0;
}

static int sf_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    delay();
    close(fi->fh);
    return 0;
}

static int sf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    delay();
    RET(datasync ? fdatasync(fi->fh) : fsync(fi->fh));
}

static const struct fuse_operations ops = {
    .init = sf_init, .getattr = sf_getattr, .access = sf_access, .readlink = sf_readlink,
    .opendir = sf_opendir, .readdir = sf_readdir, .releasedir = sf_releasedir,
    .mkdir = sf_mkdir, .unlink = sf_unlink, .rmdir = sf_rmdir, .symlink = sf_symlink,
    .rename = sf_rename, .link = sf_link, .chmod = sf_chmod, .chown = sf_chown,
    .truncate = sf_truncate, .utimens = sf_utimens, .create = sf_create, .open = sf_open,
    .read = sf_read, .write = sf_write, .statfs = sf_statfs, .flush = sf_flush,
    .release = sf_release, .fsync = sf_fsync,
};

int main(int argc, char *argv[])
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s ROOT MOUNTPOINT LATENCY_US CACHE [fuse options...]\n", argv[0]);
        return 2;
    }
    if (!realpath(argv[1], root)) {
        perror(argv[1]);
        return 2;
    }
    latency_us = strtol(argv[3], NULL, 10);
    cache = atoi(argv[4]);
    char *args[64];
    int n = 0;
    args[n++] = argv[0];
    args[n++] = argv[2];
    for (int i = 5; i < argc && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    umask(0);
    return fuse_main(n, args, &ops, NULL);
}
