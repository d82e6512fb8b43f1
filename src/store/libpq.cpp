// Loading libpq (see libpq.hpp).
#include "store/libpq.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace gatehouse::pg {

const LibPq& LibPq::get() {
  static const LibPq lib = [] {
    LibPq l;
    void* h = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      throw std::runtime_error(std::string("PostgreSQL support needs libpq (Debian: libpq5): ") +
                               ::dlerror());
    }
    auto load = [h](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      if (fn == nullptr) throw std::runtime_error(std::string("libpq has no ") + name);
    };
    load(l.PQclear, "PQclear");
    load(l.PQconnectStartParams, "PQconnectStartParams");
    load(l.PQconnectPoll, "PQconnectPoll");
    load(l.PQconninfoFree, "PQconninfoFree");
    load(l.PQconninfoParse, "PQconninfoParse");
    load(l.PQconsumeInput, "PQconsumeInput");
    load(l.PQfreemem, "PQfreemem");
    load(l.PQerrorMessage, "PQerrorMessage");
    load(l.PQfinish, "PQfinish");
    load(l.PQflush, "PQflush");
    load(l.PQgetisnull, "PQgetisnull");
    load(l.PQgetlength, "PQgetlength");
    load(l.PQgetResult, "PQgetResult");
    load(l.PQgetvalue, "PQgetvalue");
    load(l.PQisBusy, "PQisBusy");
    load(l.PQnotifies, "PQnotifies");
    load(l.PQntuples, "PQntuples");
    load(l.PQresultErrorField, "PQresultErrorField");
    load(l.PQresultErrorMessage, "PQresultErrorMessage");
    load(l.PQresultStatus, "PQresultStatus");
    load(l.PQsendPrepare, "PQsendPrepare");
    load(l.PQsendQuery, "PQsendQuery");
    load(l.PQsendQueryPrepared, "PQsendQueryPrepared");
    load(l.PQsetnonblocking, "PQsetnonblocking");
    load(l.PQsetNoticeProcessor, "PQsetNoticeProcessor");
    load(l.PQsocket, "PQsocket");
    load(l.PQstatus, "PQstatus");
    load(l.PQtransactionStatus, "PQtransactionStatus");
    return l;
  }();
  return lib;
}

std::string trimmed(const char* text) {
  std::string s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown error" : s;
}

}  // namespace gatehouse::pg
