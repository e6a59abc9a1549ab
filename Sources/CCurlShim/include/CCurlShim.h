// Typed wrappers for libcurl's variadic calls, which Swift cannot call directly.
// Each wrapper fixes the type of the third argument so the compiler checks it.
#ifndef ONAIR_CURL_SHIM_H
#define ONAIR_CURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*onair_curl_write_callback)(char *data, size_t size, size_t nmemb, void *userdata);

CURLcode onair_easy_setopt_long(CURL *easy, CURLoption option, long value);
CURLcode onair_easy_setopt_string(CURL *easy, CURLoption option, const char *value);
CURLcode onair_easy_setopt_pointer(CURL *easy, CURLoption option, void *value);
CURLcode onair_easy_setopt_slist(CURL *easy, CURLoption option, struct curl_slist *value);
CURLcode onair_easy_setopt_write_callback(CURL *easy, CURLoption option, onair_curl_write_callback value);
CURLcode onair_easy_setopt_offset(CURL *easy, CURLoption option, curl_off_t value);

CURLcode onair_easy_getinfo_long(CURL *easy, CURLINFO info, long *value);
CURLcode onair_easy_getinfo_offset(CURL *easy, CURLINFO info, curl_off_t *value);
CURLcode onair_easy_getinfo_pointer(CURL *easy, CURLINFO info, void **value);

CURLMcode onair_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

/// The easy handle and result of a CURLMSG_DONE message (the result sits in a union).
int onair_multi_done(CURLMsg *message, CURL **easy, CURLcode *result);

#endif
