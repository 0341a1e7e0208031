/*
 * echo_driver.c - a consolegate driver written in C, to prove the ABI is language-neutral.
 *
 * Built by the integration tests (tests/src/c_driver.rs) with
 *     cc -shared -fPIC -I driver-api/include -o libconsolegate_cecho.so echo_driver.c
 * It relays bytes to the hypervisor unchanged, like drivers/noop: VNC only, cleartext.
 *
 * Test builds break one promise each, to check how the proxy takes it:
 *  -DCG_TEST_ABI_VERSION=N      the descriptor claims ABI version N (refused at start-up);
 *  -DCG_TEST_DESCRIPTOR_SIZE=N  the descriptor's struct_size is N (below the v1 size: refused);
 *  -DCG_TEST_NULL_CONNECT       the descriptor's connect is NULL (refused at start-up);
 *  -DCG_TEST_NULL_VTABLE_READ   the channel vtable's read is NULL (each session refused);
 *  -DCG_TEST_GROWN              a newer driver: the descriptor and the vtable carry one field
 *                               more than v1, with struct_size to match (accepted; the
 *                               extra field is ignored).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "consolegate_driver.h"

#ifndef CG_TEST_ABI_VERSION
#define CG_TEST_ABI_VERSION CG_ABI_VERSION
#endif

#ifdef CG_TEST_GROWN
/* A later minor version, as this driver would declare it: v1 plus one field at the end. */
typedef struct {
    cg_driver_descriptor v1;
    uint64_t extension;
} descriptor_type;
typedef struct {
    cg_channel_vtable v1;
    uint64_t extension;
} vtable_type;
#define V1_PART(...) {__VA_ARGS__}, UINT64_MAX
#define V1_OF(object) (&(object).v1)
#else
typedef cg_driver_descriptor descriptor_type;
typedef cg_channel_vtable vtable_type;
#define V1_PART(...) __VA_ARGS__
#define V1_OF(object) (&(object))
#endif

#ifndef CG_TEST_DESCRIPTOR_SIZE
#define CG_TEST_DESCRIPTOR_SIZE sizeof(descriptor_type)
#endif

#ifdef CG_TEST_NULL_VTABLE_READ
#define VTABLE_READ NULL
#else
#define VTABLE_READ ch_read
#endif

#ifdef CG_TEST_NULL_CONNECT
#define DESCRIPTOR_CONNECT NULL
#else
#define DESCRIPTOR_CONNECT drv_connect
#endif

static void set_error(cg_error *err, const char *msg) {
    size_t n;
    if (err == NULL || err->buf == NULL) {
        return;
    }
    n = strlen(msg);
    if (n > err->cap) {
        n = err->cap;
    }
    memcpy(err->buf, msg, n);
    err->len = n;
}

/* errno after a failed recv/send, as a status. */
static cg_status io_status(cg_error *err) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return CG_WOULD_BLOCK;
    }
    set_error(err, strerror(errno));
    return CG_IO;
}

/* A channel is the server socket and nothing else. */
struct channel {
    int fd;
};

__attribute__((unused)) static cg_status ch_read(void *state, uint8_t *buf, size_t len, size_t *out_n, cg_error *err) {
    ssize_t n;
    if (state == NULL || buf == NULL || out_n == NULL) {
        set_error(err, "NULL argument");
        return CG_INVALID_ARGUMENT;
    }
    n = recv(((struct channel *)state)->fd, buf, len, 0);
    if (n < 0) {
        return io_status(err);
    }
    *out_n = (size_t)n;
    return CG_OK;
}

static cg_status ch_write(void *state, const uint8_t *buf, size_t len, size_t *out_n,
                          cg_error *err) {
    ssize_t n;
    if (state == NULL || buf == NULL || out_n == NULL) {
        set_error(err, "NULL argument");
        return CG_INVALID_ARGUMENT;
    }
    *out_n = 0;
    n = send(((struct channel *)state)->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0) {
        return io_status(err);
    }
    *out_n = (size_t)n;
    return CG_OK;
}

static cg_status ch_flush(void *state, cg_error *err) {
    (void)state;
    (void)err;
    return CG_OK;
}

static uint32_t ch_interest(const void *state) {
    (void)state;
    return CG_INTEREST_READ;
}

static void ch_destroy(void *state) {
    free(state);
}

static const vtable_type VTABLE = {
    V1_PART(sizeof(vtable_type), VTABLE_READ, ch_write, ch_flush, ch_interest, ch_destroy),
};

/* The driver has no state; the handle only has to be non-NULL. */
static int handle_token;

static cg_status drv_init(const cg_host *host, const cg_option *options, size_t n_options,
                          void **out_handle, cg_error *err) {
    (void)options;
    (void)n_options;
    if (host == NULL || out_handle == NULL) {
        set_error(err, "NULL argument");
        return CG_INVALID_ARGUMENT;
    }
    if (host->log != NULL) {
        static const char msg[] = "cecho driver: relaying in cleartext";
        cg_str s = {(const uint8_t *)msg, sizeof msg - 1};
        host->log(host->log_ctx, CG_LOG_INFO, s);
    }
    *out_handle = &handle_token;
    return CG_OK;
}

__attribute__((unused)) static cg_status drv_connect(void *handle, const cg_session_info *session,
                             const cg_client_io *client, int server_fd,
                             cg_channel *out_channel, cg_error *err) {
    struct channel *ch;
    if (handle == NULL || session == NULL || client == NULL || out_channel == NULL) {
        set_error(err, "NULL argument");
        return CG_INVALID_ARGUMENT;
    }
    if (server_fd < 0) {
        set_error(err, "server_fd is negative");
        return CG_INVALID_ARGUMENT;
    }
    ch = malloc(sizeof *ch);
    if (ch == NULL) {
        set_error(err, "out of memory");
        return CG_INTERNAL;
    }
    ch->fd = server_fd;
    out_channel->state = ch;
    out_channel->vtable = V1_OF(VTABLE);
    return CG_OK;
}

static void drv_destroy(void *handle) {
    (void)handle;
}

static const descriptor_type DESCRIPTOR = {V1_PART(
    CG_DRIVER_MAGIC,
    CG_TEST_ABI_VERSION,
    CG_TEST_DESCRIPTOR_SIZE,
    CG_KIND_VNC,
    CG_DRIVER_FLAG_CLEARTEXT,
    "cecho",
    "0.1.0",
    "C test driver: relays bytes unchanged (cleartext hypervisor leg)",
    "",
    drv_init,
    DESCRIPTOR_CONNECT,
    drv_destroy
)};

const cg_driver_descriptor *consolegate_driver_v1(void) {
    return V1_OF(DESCRIPTOR);
}
