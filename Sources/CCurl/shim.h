#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic; Swift cannot call them. One wrapper per
   argument type migsnap passes. */
typedef size_t (*migsnap_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode migsnap_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode migsnap_curl_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode migsnap_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode migsnap_curl_setopt_data_callback(CURL *handle, CURLoption option, migsnap_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode migsnap_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
