// libpq, loaded at run time (dlopen) when a PostgreSQL store or URL is first used.
#pragma once

#include <libpq-fe.h>

#include <string>

namespace gatehouse::pg {

// libpq is loaded when a PostgreSQL store is first opened, not at program start: a
// server on the embedded SQLite store then never maps libpq and what it pulls in
// (GnuTLS, Kerberos, LDAP), about 2.5 MiB of resident memory. The functions keep
// libpq's own names and signatures (from libpq-fe.h).
struct LibPq {
  decltype(&::PQclear) PQclear = nullptr;
  decltype(&::PQconnectStartParams) PQconnectStartParams = nullptr;
  decltype(&::PQconnectPoll) PQconnectPoll = nullptr;
  decltype(&::PQconninfoFree) PQconninfoFree = nullptr;
  decltype(&::PQconninfoParse) PQconninfoParse = nullptr;
  decltype(&::PQconsumeInput) PQconsumeInput = nullptr;
  decltype(&::PQfreemem) PQfreemem = nullptr;
  decltype(&::PQerrorMessage) PQerrorMessage = nullptr;
  decltype(&::PQfinish) PQfinish = nullptr;
  decltype(&::PQflush) PQflush = nullptr;
  decltype(&::PQgetisnull) PQgetisnull = nullptr;
  decltype(&::PQgetlength) PQgetlength = nullptr;
  decltype(&::PQgetResult) PQgetResult = nullptr;
  decltype(&::PQgetvalue) PQgetvalue = nullptr;
  decltype(&::PQisBusy) PQisBusy = nullptr;
  decltype(&::PQnotifies) PQnotifies = nullptr;
  decltype(&::PQntuples) PQntuples = nullptr;
  decltype(&::PQresultErrorField) PQresultErrorField = nullptr;
  decltype(&::PQresultErrorMessage) PQresultErrorMessage = nullptr;
  decltype(&::PQresultStatus) PQresultStatus = nullptr;
  decltype(&::PQsendPrepare) PQsendPrepare = nullptr;
  decltype(&::PQsendQuery) PQsendQuery = nullptr;
  decltype(&::PQsendQueryPrepared) PQsendQueryPrepared = nullptr;
  decltype(&::PQsetnonblocking) PQsetnonblocking = nullptr;
  decltype(&::PQsetNoticeProcessor) PQsetNoticeProcessor = nullptr;
  decltype(&::PQsocket) PQsocket = nullptr;
  decltype(&::PQstatus) PQstatus = nullptr;
  decltype(&::PQtransactionStatus) PQtransactionStatus = nullptr;

  // The loaded library (throws std::runtime_error when libpq.so.5 is missing).
  static const LibPq& get();
};

inline const LibPq& pq() { return LibPq::get(); }

// A libpq message without its trailing newline and spaces ("unknown error" when empty).
std::string trimmed(const char* text);

}  // namespace gatehouse::pg
