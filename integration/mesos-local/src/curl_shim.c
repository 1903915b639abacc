/* Drover mesos-local: a libcurl.so.4 shim.
 *
 * `_scheduler.so` imports seven libcurl functions at symbol version
 * CURL_OPENSSL_3; Debian bookworm's libcurl.so.4 defines CURL_OPENSSL_4.
 * This library exports those seven functions under CURL_OPENSSL_3 (see
 * curl_shim.map) and forwards each call to the system libcurl, which it
 * opens with dlopen() by absolute path (DROVER_SYSTEM_LIBCURL, given at
 * build time). RTLD_LOCAL keeps the system library's symbols out of the
 * global scope; its own references are to CURL_OPENSSL_4 and so never bind
 * back to this shim. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef DROVER_SYSTEM_LIBCURL
#error "DROVER_SYSTEM_LIBCURL (absolute path of the system libcurl.so.4) must be defined"
#endif

typedef void CURL;
typedef int CURLcode;   /* enum */
typedef int CURLoption; /* enum */
typedef int CURLINFO;   /* enum */

static struct {
  void (*easy_cleanup)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  CURL* (*easy_init)(void);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  const char* (*easy_strerror)(CURLcode);
  CURLcode (*global_init)(long);
} real;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void* resolve(void* handle, const char* name) {
  void* fn = dlsym(handle, name);
  if (fn == NULL) {
    fprintf(stderr, "drover libcurl shim: %s not found in %s: %s\n",
            name, DROVER_SYSTEM_LIBCURL, dlerror());
    abort();
  }
  return fn;
}

static void load(void) {
  void* handle = dlopen(DROVER_SYSTEM_LIBCURL, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    fprintf(stderr, "drover libcurl shim: cannot dlopen %s: %s\n",
            DROVER_SYSTEM_LIBCURL, dlerror());
    abort();
  }
  *(void**) &real.easy_cleanup = resolve(handle, "curl_easy_cleanup");
  *(void**) &real.easy_getinfo = resolve(handle, "curl_easy_getinfo");
  *(void**) &real.easy_init = resolve(handle, "curl_easy_init");
  *(void**) &real.easy_perform = resolve(handle, "curl_easy_perform");
  *(void**) &real.easy_setopt = resolve(handle, "curl_easy_setopt");
  *(void**) &real.easy_strerror = resolve(handle, "curl_easy_strerror");
  *(void**) &real.global_init = resolve(handle, "curl_global_init");
}

static void ensure(void) {
  pthread_once(&once, load);
}

void curl_easy_cleanup(CURL* handle) {
  ensure();
  real.easy_cleanup(handle);
}

/* curl_easy_getinfo takes exactly one pointer after the info code. */
CURLcode curl_easy_getinfo(CURL* handle, CURLINFO info, ...) {
  va_list ap;
  void* arg;
  ensure();
  va_start(ap, info);
  arg = va_arg(ap, void*);
  va_end(ap);
  return real.easy_getinfo(handle, info, arg);
}

CURL* curl_easy_init(void) {
  ensure();
  return real.easy_init();
}

CURLcode curl_easy_perform(CURL* handle) {
  ensure();
  return real.easy_perform(handle);
}

/* curl_easy_setopt takes exactly one argument after the option: a long, an
 * object or function pointer, or a curl_off_t. On x86-64 all of them are
 * passed in one 8-byte integer slot, so it is forwarded as such. */
CURLcode curl_easy_setopt(CURL* handle, CURLoption option, ...) {
  va_list ap;
  void* arg;
  ensure();
  va_start(ap, option);
  arg = va_arg(ap, void*);
  va_end(ap);
  return real.easy_setopt(handle, option, arg);
}

const char* curl_easy_strerror(CURLcode code) {
  ensure();
  return real.easy_strerror(code);
}

CURLcode curl_global_init(long flags) {
  ensure();
  return real.global_init(flags);
}
