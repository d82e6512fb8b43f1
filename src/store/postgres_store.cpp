// The shared store: PostgreSQL through libpq, for several gatehouse instances behind
// one load balancer. Same schema and semantics as the SQLite store (numbered
// migrations in schema_migrations, users ordered by the bytes of their names), with:
//  - a connection pool (grows on demand to kMaxConnections, then callers wait); an idle
//    connection is checked without a round trip before reuse and replaced if the server
//    closed it; a read that fails because the connection died is retried once;
//  - every statement prepared once per connection (PQprepare on first use), run with
//    PQexecPrepared and text parameters;
//  - migrations applied at open in one transaction holding a transaction-scoped advisory
//    lock, so instances starting together migrate exactly once;
//  - the URL handed to PQconnectdb unchanged (sslmode, sslrootcert, options,
//    connect_timeout... all apply); it is never echoed with its password.
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/throttle.hpp"
#include "store/libpq.hpp"
#include "store/lru.hpp"
#include "store/postgres_url.hpp"

namespace gatehouse {

namespace {

using pg::pq;
using pg::Redactor;
using pg::trimmed;

// Migration N brings the schema from version N-1 to N. Never edit one that shipped.
// Names compare and sort by their bytes (COLLATE "C"), as SQLite's BINARY collation
// does, whatever the database's default collation is.
constexpr const char* kMigrations[] = {
    // 1: users and settings.
    R"sql(
CREATE TABLE users (
  username        text COLLATE "C" PRIMARY KEY,
  email           text,
  full_name       text,
  disabled        boolean NOT NULL DEFAULT false,
  hashed_password text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE settings (
  name  text COLLATE "C" PRIMARY KEY,
  value text NOT NULL
);
)sql",
    // 2: the scopes each user may be granted, space-separated ('' = any).
    R"sql(
ALTER TABLE users ADD COLUMN scopes text NOT NULL DEFAULT '';
)sql",
    // 3: signing keys (RS256/ES256/EdDSA). is_current is 1 for the one key that signs
    // and NULL for the others; UNIQUE lets at most one row have it.
    R"sql(
CREATE TABLE signing_keys (
  kid           text COLLATE "C" PRIMARY KEY,
  alg           text NOT NULL,
  private_key   text NOT NULL,
  created_at    bigint NOT NULL,
  superseded_at bigint,
  retired_at    bigint,
  is_current    smallint UNIQUE CHECK (is_current = 1)
);
)sql",
    // 4: brute-force counters (throttle.hpp), shared by every instance on the database.
    R"sql(
CREATE TABLE login_failures (
  key              text COLLATE "C" PRIMARY KEY,
  score            double precision NOT NULL,
  updated_ms       bigint NOT NULL,
  blocked_until_ms bigint NOT NULL DEFAULT 0
);
)sql",
    // 5: refresh tokens (by SHA-256; a family is one login's chain of rotations) and
    // the access tokens revoked before they expire (by SHA-256 of their signature).
    R"sql(
CREATE TABLE refresh_tokens (
  hash              text COLLATE "C" PRIMARY KEY,
  family            text COLLATE "C" NOT NULL,
  username          text NOT NULL,
  scope             text NOT NULL,
  expires_at        bigint NOT NULL,
  family_expires_at bigint NOT NULL,
  spent_at          bigint,
  successor         text
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE TABLE revoked_tokens (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key        text COLLATE "C" UNIQUE NOT NULL,
  expires_at bigint NOT NULL
);
)sql",
};

// The advisory lock taken by migrations: "gatehous" in ASCII. Advisory locks are per
// database, so stores in different databases on one server do not wait for each other.
constexpr std::int64_t kMigrationLockKey = 0x6761'7465'686f'7573;

constexpr std::size_t kMaxConnections = 16;

// Cache invalidation. Every committed change to a user sends
//   NOTIFY gatehouse_users, '<username>'
// (pg_notify, evaluated in the same statement, hence the same transaction, as the
// change: it is delivered when and only when the change commits, and not at all when
// nothing changed). An instance that caches users can LISTEN gatehouse_users and drop
// the named entry. A payload must be shorter than 8000 bytes; for a longer name the
// payload is empty, which means "drop every cached user".
#define GATEHOUSE_NOTIFY_USER            \
  "SELECT pg_notify('gatehouse_users', " \
  "CASE WHEN octet_length(username) < 8000 THEN username ELSE '' END) FROM changed"

#define GATEHOUSE_USER_COLUMNS "username, email, full_name, disabled, hashed_password, scopes"

enum Stmt : std::size_t {
  kFind,
  kList,
  kListPage,
  kAdd,
  kSetDisabled,
  kSetPasswordHash,
  kReplacePasswordHash,
  kRemove,
  kGetSetting,
  kSetSetting,
  kInitSetting,
  kCasSetting,
  kBlockedUntil,
  kAddFailure,
  kBlock,
  kResetFailures,
  kPurgeFailures,
  kListKeys,
  kSupersedeKey,
  kInsertKey,
  kRetireKey,
  kAddRefresh,
  kFindRefresh,
  kLockRefresh,
  kSpendRefresh,
  kFindUnspent,
  kRevokeFamily,
  kDeny,
  kDeniedSince,
  kPruneDenied,
  kPruneRefresh,
  kPublish,
  kStmtCount,
};

struct StmtDef {
  const char* name;
  const char* sql;
  int params;
};

// User writes return one row per changed user (the NOTIFY), none when nothing matched.
constexpr std::array<StmtDef, kStmtCount> kStatements{{
    {"gh_find", "SELECT " GATEHOUSE_USER_COLUMNS " FROM users WHERE username = $1", 1},
    {"gh_list", "SELECT " GATEHOUSE_USER_COLUMNS " FROM users ORDER BY username", 0},
    {"gh_list_page",
     "SELECT " GATEHOUSE_USER_COLUMNS
     " FROM users WHERE username > $1 ORDER BY username LIMIT $2::bigint",
     2},
    {"gh_add",
     "WITH changed AS (INSERT INTO users (" GATEHOUSE_USER_COLUMNS ") "
     "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING RETURNING "
     "username) " GATEHOUSE_NOTIFY_USER,
     6},
    {"gh_set_disabled",
     "WITH changed AS (UPDATE users SET disabled = $2, updated_at = now() "
     "WHERE username = $1 RETURNING username) " GATEHOUSE_NOTIFY_USER,
     2},
    {"gh_set_password_hash",
     "WITH changed AS (UPDATE users SET hashed_password = $2, updated_at = now() "
     "WHERE username = $1 RETURNING username) " GATEHOUSE_NOTIFY_USER,
     2},
    {"gh_replace_password_hash",
     "WITH changed AS (UPDATE users SET hashed_password = $3, updated_at = now() "
     "WHERE username = $1 AND hashed_password = $2 RETURNING username) " GATEHOUSE_NOTIFY_USER,
     3},
    {"gh_remove",
     "WITH changed AS (DELETE FROM users WHERE username = $1 RETURNING "
     "username) " GATEHOUSE_NOTIFY_USER,
     1},
    {"gh_get_setting", "SELECT value FROM settings WHERE name = $1", 1},
    {"gh_set_setting",
     "INSERT INTO settings (name, value) VALUES ($1, $2) "
     "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
     2},
    {"gh_init_setting",
     "INSERT INTO settings (name, value) VALUES ($1, $2) "
     "ON CONFLICT (name) DO NOTHING RETURNING value",
     2},
    {"gh_cas_setting", "UPDATE settings SET value = $3 WHERE name = $1 AND value = $2 RETURNING 1",
     3},
    {"gh_blocked_until",
     "SELECT COALESCE(MAX(blocked_until_ms), 0) FROM login_failures WHERE key = $1 OR key = $2", 2},
    {"gh_add_failure",
     "INSERT INTO login_failures AS f (key, score, updated_ms) VALUES ($1, 1, $2) "
     "ON CONFLICT (key) DO UPDATE SET "
     "score = GREATEST(0, f.score - GREATEST(0, excluded.updated_ms - f.updated_ms) / "
     "$3::double precision) + 1, "
     "updated_ms = GREATEST(f.updated_ms, excluded.updated_ms) RETURNING score",
     3},
    {"gh_block",
     "UPDATE login_failures SET blocked_until_ms = GREATEST(blocked_until_ms, $2) WHERE key = $1",
     2},
    {"gh_reset_failures", "DELETE FROM login_failures WHERE key = $1", 1},
    {"gh_purge_failures",
     "DELETE FROM login_failures WHERE updated_ms < $1 AND blocked_until_ms < $1", 1},
    {"gh_list_keys",
     "SELECT kid, alg, private_key, created_at, superseded_at, retired_at "
     "FROM signing_keys ORDER BY created_at, superseded_at IS NULL, superseded_at, kid",
     0},
    // Key changes are announced on gatehouse_keys, delivered when they commit.
    // $2: the kid that must be current (NULL: whichever is).
    {"gh_supersede_key",
     "WITH changed AS (UPDATE signing_keys SET is_current = NULL, superseded_at = $1 "
     "WHERE is_current = 1 AND ($2::text IS NULL OR kid = $2) RETURNING kid) "
     "SELECT pg_notify('gatehouse_keys', kid) FROM changed",
     2},
    {"gh_insert_key",
     "WITH changed AS (INSERT INTO signing_keys (kid, alg, private_key, created_at, is_current) "
     "VALUES ($1, $2, $3, $4, 1) RETURNING kid) SELECT pg_notify('gatehouse_keys', kid) FROM "
     "changed",
     4},
    {"gh_retire_key",
     "WITH changed AS (UPDATE signing_keys SET retired_at = $2, is_current = NULL, "
     "superseded_at = COALESCE(superseded_at, $2) WHERE kid = $1 AND retired_at IS NULL "
     "RETURNING kid) SELECT pg_notify('gatehouse_keys', kid) FROM changed",
     2},
    {"gh_add_refresh",
     "INSERT INTO refresh_tokens (hash, family, username, scope, expires_at, family_expires_at) "
     "VALUES ($1, $2, $3, $4, $5, $6)",
     6},
    {"gh_find_refresh",
     "SELECT hash, family, username, scope, expires_at, family_expires_at, spent_at IS NOT NULL "
     "FROM refresh_tokens WHERE hash = $1 AND (expires_at >= $2 OR spent_at IS NOT NULL) AND "
     "family_expires_at >= $2",
     2},
    // The row lock makes a concurrent rotation of the same token wait, then read the
    // committed result (READ COMMITTED re-reads a locked row once it is released).
    {"gh_lock_refresh",
     "SELECT hash, family, username, scope, expires_at, family_expires_at, false, spent_at, "
     "successor FROM refresh_tokens WHERE hash = $1 FOR UPDATE",
     1},
    {"gh_spend_refresh",
     "UPDATE refresh_tokens SET spent_at = $2, successor = $3 WHERE hash = $1 AND spent_at IS "
     "NULL RETURNING hash",
     3},
    {"gh_find_unspent",
     "SELECT hash, family, username, scope, expires_at, family_expires_at, false FROM "
     "refresh_tokens WHERE hash = $1 AND spent_at IS NULL",
     1},
    {"gh_revoke_family", "DELETE FROM refresh_tokens WHERE family = $1 RETURNING hash", 1},
    // A new denial is announced on gatehouse_revoked ("<key> <expires_at>") in the same
    // statement, so it is delivered when and only when it commits (ChangeFeed).
    {"gh_deny",
     "WITH changed AS (INSERT INTO revoked_tokens (key, expires_at) VALUES ($1, $2) "
     "ON CONFLICT (key) DO NOTHING RETURNING key, expires_at) "
     "SELECT pg_notify('gatehouse_revoked', key || ' ' || expires_at) FROM changed",
     2},
    // Identity values are drawn before commit, so a denial may become visible after one
    // with a higher seq: the poll looks back 256 denials (applying one twice is harmless).
    {"gh_denied_since",
     "SELECT seq, key, expires_at FROM revoked_tokens WHERE seq > $1 - 256 AND expires_at >= $2 "
     "ORDER BY seq",
     2},
    {"gh_prune_denied", "DELETE FROM revoked_tokens WHERE expires_at < $1", 1},
    {"gh_prune_refresh",
     "DELETE FROM refresh_tokens WHERE family_expires_at < $1 OR (spent_at IS NULL AND "
     "expires_at < $1)",
     1},
    {"gh_publish", "SELECT pg_notify($1, $2)", 2},
}};

#undef GATEHOUSE_NOTIFY_USER
#undef GATEHOUSE_USER_COLUMNS

// ---- libpq wrappers -----------------------------------------------------------------

// A failed statement. `sqlstate` is the server's error code ("23505"...), empty when the
// statement never got an answer; `connection_lost` when the connection is now unusable.
class PgError : public std::runtime_error {
 public:
  PgError(const std::string& what, std::string state, bool lost)
      : std::runtime_error(what), sqlstate(std::move(state)), connection_lost(lost) {}
  std::string sqlstate;
  bool connection_lost;
};

class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { pq().PQclear(r_); }
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  Result& operator=(Result&&) = delete;

  int rows() const { return pq().PQntuples(r_); }
  std::optional<std::string> text(int row, int col) const {
    if (pq().PQgetisnull(r_, row, col) != 0) return std::nullopt;
    return std::string(pq().PQgetvalue(r_, row, col),
                       static_cast<std::size_t>(pq().PQgetlength(r_, row, col)));
  }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

User read_user(const Result& r, int row) {
  User u;
  u.username = r.text(row, 0).value_or("");
  u.email = r.text(row, 1);
  u.full_name = r.text(row, 2);
  u.disabled = r.text(row, 3).value_or("f") == "t";
  u.hashed_password = r.text(row, 4).value_or("");
  const std::string scopes = r.text(row, 5).value_or("");
  for (std::size_t i = 0; i < scopes.size();) {
    auto j = scopes.find(' ', i);
    if (j == std::string::npos) j = scopes.size();
    if (j > i) u.scopes.push_back(scopes.substr(i, j - i));
    i = j + 1;
  }
  return u;
}

// How long a connection may wait for the database. `limit` bounds each round trip on
// the client side (connecting, a statement); the server is told `statement_timeout`
// (it answers a cancelled statement with SQLSTATE 57014 a little before the client
// would give up, so a slow statement keeps its connection).
struct Limits {
  std::chrono::milliseconds connect{5000};
  std::chrono::milliseconds statement{5000};
  std::chrono::milliseconds client() const { return statement + std::chrono::milliseconds(500); }
};

using Clock = std::chrono::steady_clock;

// Waits until `fd` is ready for `events` or `deadline` passes; false on timeout. Past
// the deadline it still looks once without waiting: a thread that was not scheduled
// until after its deadline (a busy or paused machine) takes an answer already there.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    const auto left = std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60000)));
    if (n == 0 && left == 0) return false;
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let libpq find out what is wrong
  }
}

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  std::string out = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    std::string frac = std::to_string(ms % 1000 + 1000).substr(1);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    out += "." + frac;
  }
  return out + " s";
}

// One libpq connection, used in non-blocking mode so that every wait for the server
// has a deadline: a server that stops answering (stopped, partitioned, a full disk)
// costs a request at most Limits::client(), never an I/O thread or a hang.
class Connection {
 public:
  Connection(const std::string& url, const std::string& password, const Redactor& redactor,
             const Limits& limits, const char* application_name)
      : redactor_(redactor), limits_(limits) {
    // Keywords before "dbname" are defaults the URL may override; those after it win.
    const std::string connect_timeout =
        std::to_string(std::max<long long>(2, (limits.connect.count() + 999) / 1000));
    std::string options = "-c statement_timeout=" + std::to_string(limits.statement.count());
    if (const char* env = std::getenv("PGOPTIONS"); env != nullptr && *env != '\0') {
      options += ' ';
      options += env;  // the environment's options come later, so they win
    }
    std::vector<const char*> keys{"connect_timeout", "options", "fallback_application_name",
                                  "dbname", "client_encoding"};
    std::vector<const char*> values{connect_timeout.c_str(), options.c_str(), application_name,
                                    url.c_str(), "UTF8"};
    if (!password.empty()) {
      // The password given after the URL wins over one the URL might hold.
      keys.push_back("password");
      values.push_back(password.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = pq().PQconnectStartParams(keys.data(), values.data(), 1);
    if (conn_ == nullptr) throw std::runtime_error("postgres: out of memory");
    const auto deadline = Clock::now() + limits.connect;
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    while (pq().PQstatus(conn_) != CONNECTION_BAD && state != PGRES_POLLING_OK &&
           state != PGRES_POLLING_FAILED) {
      const short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      if (!wait_fd(pq().PQsocket(conn_), events, deadline)) {
        pq().PQfinish(conn_);
        throw StoreUnavailable("postgres: cannot connect to " + redactor_.safe_url() +
                               ": no answer within " + seconds_text(limits.connect));
      }
      state = pq().PQconnectPoll(conn_);
    }
    if (pq().PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = redactor_.scrub(trimmed(pq().PQerrorMessage(conn_)));
      pq().PQfinish(conn_);
      throw StoreUnavailable("postgres: cannot connect to " + redactor_.safe_url() + ": " + msg);
    }
    // Errors come back as exceptions; nothing is printed on the process's stderr (which
    // may carry the access log as JSON lines).
    pq().PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    if (pq().PQsetnonblocking(conn_, 1) != 0) {
      std::string msg = redactor_.scrub(trimmed(pq().PQerrorMessage(conn_)));
      pq().PQfinish(conn_);
      throw StoreUnavailable("postgres: " + msg);
    }
  }
  ~Connection() { pq().PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A simple statement (no parameters; several statements allowed).
  Result exec(const char* what, const char* sql) { return run(what, pq().PQsendQuery(conn_, sql)); }

  Result exec(Stmt stmt, const std::vector<const char*>& params) {
    const StmtDef& def = kStatements[stmt];
    if (!prepared_[stmt]) {
      run(def.name, pq().PQsendPrepare(conn_, def.name, def.sql, def.params, nullptr));
      prepared_[stmt] = true;
    }
    return run(def.name, pq().PQsendQueryPrepared(conn_, def.name, static_cast<int>(params.size()),
                                                  params.data(), nullptr, nullptr, 0));
  }

  // The client-side limit for the statements that follow (migrations may wait longer).
  void set_client_limit(std::chrono::milliseconds limit) { client_limit_ = limit; }

  // False when this idle connection can no longer be used. No round trip: an idle
  // connection has nothing to read unless the server closed it (or sent a notice).
  bool usable() {
    if (broken_ || pq().PQstatus(conn_) != CONNECTION_OK) return false;
    pollfd p{pq().PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0) return false;
    // Readable while idle: almost always the server's FATAL message before it closed
    // the connection (shutdown, pg_terminate_backend, idle_session_timeout), which
    // libpq would only notice as a failed statement. Not worth keeping either way.
    if (::poll(&p, 1, 0) != 0) return false;
    return idle();
  }

  bool idle() const {
    return !broken_ && pq().PQstatus(conn_) == CONNECTION_OK &&
           pq().PQtransactionStatus(conn_) == PQTRANS_IDLE;
  }

  // For the watcher (LISTEN): the socket to wait on, and what arrived.
  int socket() const { return pq().PQsocket(conn_); }
  // Reads what the server sent; false when the connection is gone.
  bool consume() {
    return pq().PQconsumeInput(conn_) != 0 && pq().PQstatus(conn_) == CONNECTION_OK;
  }
  // The next notification (its channel and payload), if one arrived.
  std::optional<std::pair<std::string, std::string>> notification() {
    PGnotify* n = pq().PQnotifies(conn_);
    if (n == nullptr) return std::nullopt;
    std::pair<std::string, std::string> out{n->relname != nullptr ? n->relname : "",
                                            n->extra != nullptr ? n->extra : ""};
    pq().PQfreemem(n);
    return out;
  }

 private:
  // Waits for the answer to what was just sent, at most the client-side limit. libpq
  // in non-blocking mode may keep part of the query in its buffer: it is flushed here.
  Result run(const char* what, int sent) {
    if (sent == 0) return fail(what, nullptr);
    const auto deadline =
        Clock::now() + (client_limit_.count() > 0 ? client_limit_ : limits_.client());
    auto timed_out = [&] {
      broken_ = true;  // an answer may still come: the connection cannot be reused
      return StoreUnavailable(
          "postgres: " + std::string(what) + ": no answer from " + redactor_.safe_url() +
          " within " + seconds_text(client_limit_.count() > 0 ? client_limit_ : limits_.client()));
    };
    for (int flushed = pq().PQflush(conn_); flushed != 0; flushed = pq().PQflush(conn_)) {
      if (flushed < 0) return fail(what, nullptr);
      if (!wait_fd(pq().PQsocket(conn_), POLLOUT | POLLIN, deadline)) throw timed_out();
      if (pq().PQconsumeInput(conn_) == 0) return fail(what, nullptr);
    }
    // Several results for several statements: the first error, else the last one.
    PGresult* kept = nullptr;
    while (true) {
      while (pq().PQisBusy(conn_) != 0) {
        if (!wait_fd(pq().PQsocket(conn_), POLLIN, deadline)) {
          pq().PQclear(kept);
          throw timed_out();
        }
        if (pq().PQconsumeInput(conn_) == 0) {
          pq().PQclear(kept);
          return fail(what, nullptr);
        }
      }
      PGresult* r = pq().PQgetResult(conn_);
      if (r == nullptr) break;
      const bool kept_error = kept != nullptr && pq().PQresultStatus(kept) != PGRES_COMMAND_OK &&
                              pq().PQresultStatus(kept) != PGRES_TUPLES_OK;
      if (kept_error) {
        pq().PQclear(r);
        continue;
      }
      pq().PQclear(kept);
      kept = r;
    }
    if (kept == nullptr) return fail(what, nullptr);
    return fail(what, kept);
  }

  // The result if it succeeded; otherwise throws PgError with the server's message.
  Result fail(const char* what, PGresult* raw) {
    Result r(raw);
    const ExecStatusType status = raw != nullptr ? pq().PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    const bool lost = pq().PQstatus(conn_) != CONNECTION_OK;
    if (lost) broken_ = true;
    const char* state = raw != nullptr ? pq().PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    const char* msg = raw != nullptr ? pq().PQresultErrorMessage(raw) : pq().PQerrorMessage(conn_);
    if (msg == nullptr || *msg == '\0') msg = pq().PQerrorMessage(conn_);
    throw PgError(std::string("postgres: ") + what + ": " + redactor_.scrub(trimmed(msg)),
                  state != nullptr ? state : "", lost);
  }

  PGconn* conn_ = nullptr;
  const Redactor& redactor_;
  Limits limits_;
  std::chrono::milliseconds client_limit_{0};  // 0: limits_.client()
  bool broken_ = false;
  std::array<bool, kStmtCount> prepared_{};
};

// ---- text parameters ----------------------------------------------------------------

// PostgreSQL text holds neither NUL bytes nor (in a UTF8 database) invalid UTF-8, and a
// text parameter is a C string: a name containing either cannot name a stored row.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      len = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += len + 1;
  }
  return true;
}

void require_text(std::string_view what, std::string_view value) {
  if (!valid_utf8(value)) {
    throw std::runtime_error("postgres: " + std::string(what) +
                             " must be UTF-8 text without NUL bytes");
  }
}

// ---- the store ----------------------------------------------------------------------

// Users found, shared by every thread of the process (I/O threads read it without a
// round trip), bounded in bytes, kept current by the watcher's LISTEN gatehouse_users
// and by this process's own writes. Only enabled while the watcher listens: a
// notification missed while it was not connected could leave a stale user, so every
// (re)connection starts from an empty cache. A lookup that read the database puts its
// user only if no change was announced since it started (the generation), so a
// notification that overtakes the read cannot leave the old row behind.
class SharedUserCache {
 public:
  explicit SharedUserCache(std::size_t budget_bytes) : lru_(budget_bytes) {}

  // The cached user, or nullptr; `generation` is what a later put() must present.
  UserPtr get(std::string_view name, std::uint64_t& generation) {
    std::lock_guard lock(mutex_);
    generation = generation_;
    if (!enabled_) return nullptr;
    if (auto* user = lru_.get(name)) return *user;
    return nullptr;
  }
  void put(const UserPtr& user, std::uint64_t generation) {
    std::lock_guard lock(mutex_);
    if (!enabled_ || generation != generation_) return;
    lru_.put(user->username, user, cost_of(*user));
  }
  void forget(std::string_view name) {
    std::lock_guard lock(mutex_);
    ++generation_;
    lru_.erase(name);
  }
  // Empties the cache; `enabled`: whether it may fill again.
  void reset(bool enabled) {
    std::lock_guard lock(mutex_);
    ++generation_;
    lru_.clear();
    enabled_ = enabled;
  }

 private:
  // What a cached user costs: its strings plus the list node, map node and control
  // block around them (an estimate on the high side), as in the SQLite store.
  static std::size_t cost_of(const User& u) {
    std::size_t bytes = 2 * u.username.size() + u.hashed_password.size() + 256;
    if (u.email) bytes += u.email->size();
    if (u.full_name) bytes += u.full_name->size();
    for (const auto& sc : u.scopes) bytes += sc.size() + 32;
    return bytes;
  }

  std::mutex mutex_;
  ByteBudgetLru<UserPtr> lru_;
  std::uint64_t generation_ = 0;
  bool enabled_ = false;
};

// SQLSTATEs that say "not now" rather than "wrong": the connection or the server went
// away (08, 57P0x), a statement ran out of time (57014: statement_timeout) or out of
// resources (53), or lost a lock conflict (40, 55P03). The caller may try again: 503.
bool transient(const PgError& e) {
  const std::string& s = e.sqlstate;
  return e.connection_lost || s.empty() || s.rfind("08", 0) == 0 || s.rfind("57", 0) == 0 ||
         s.rfind("53", 0) == 0 || s.rfind("40", 0) == 0 || s == "55P03";
}

class PostgresStore final : public UserStore,
                            public ThrottleCounters,
                            public TokenStore,
                            public ChangeFeed {
 public:
  PostgresStore(const std::string& url, const std::string& password, const PostgresOptions& options)
      : url_(url),
        password_(password),
        redactor_(redactor_for(url, password)),
        options_(options),
        limits_{options.timeout, options.timeout} {
    auto conn = std::make_unique<Connection>(url_, password_, redactor_, limits_, "gatehouse");
    migrate(*conn);
    open_ = 1;
    idle_.push_back(std::move(conn));
    if (options_.watch) {
      if (options_.user_cache_bytes > 0) {
        cache_ = std::make_unique<SharedUserCache>(options_.user_cache_bytes);
      }
      auto listener = listen();  // the first one here, so the cache works from the start
      if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw std::runtime_error("postgres: cannot make a pipe for the watcher");
      }
      watcher_ = std::thread([this, c = std::move(listener)]() mutable { watch(std::move(c)); });
    }
  }

  ~PostgresStore() override {
    if (watcher_.joinable()) {
      stopping_ = true;
      wake();
      watcher_.join();
    }
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  UserPtr find(std::string_view username) override {
    if (!valid_utf8(username)) return nullptr;
    std::uint64_t generation = 0;
    if (cache_) {
      if (auto user = cache_->get(username, generation)) return user;
    }
    const std::string name(username);
    UserPtr user = read([&](Connection& c) -> UserPtr {
      Result r = c.exec(kFind, {name.c_str()});
      if (r.rows() == 0) return nullptr;
      return std::make_shared<const User>(read_user(r, 0));
    });
    if (user && cache_) cache_->put(user, generation);
    return user;
  }

  std::optional<StoreHealth> health() const override {
    if (!options_.watch) return std::nullopt;
    if (down_.load()) {
      std::lock_guard lock(reason_mutex_);
      return StoreHealth{false, down_reason_};
    }
    if (!listening_.load()) return StoreHealth{false, "reconnecting to the database"};
    return StoreHealth{true, "reachable, listening for changes"};
  }

  StoreStatus add(const User& user) override {
    require_text("username", user.username);
    if (user.email) require_text("email", *user.email);
    if (user.full_name) require_text("full_name", *user.full_name);
    require_text("hashed_password", user.hashed_password);
    std::string scopes;
    for (const auto& sc : user.scopes) {
      require_text("scope", sc);
      if (!scopes.empty()) scopes += ' ';
      scopes += sc;
    }
    const Forget forget(*this, user.username);
    try {
      return write([&](Connection& c) {
        Result r =
            c.exec(kAdd, {user.username.c_str(), user.email ? user.email->c_str() : nullptr,
                          user.full_name ? user.full_name->c_str() : nullptr,
                          user.disabled ? "t" : "f", user.hashed_password.c_str(), scopes.c_str()});
        return r.rows() == 1 ? StoreStatus::ok : StoreStatus::exists;
      });
    } catch (const PgError& e) {
      if (e.sqlstate == "23505") return StoreStatus::exists;  // unique_violation
      throw;
    }
  }

  StoreStatus set_disabled(std::string_view username, bool disabled) override {
    if (!valid_utf8(username)) return StoreStatus::not_found;
    return update(kSetDisabled, username, disabled ? "t" : "f");
  }

  StoreStatus set_password_hash(std::string_view username, std::string_view hash) override {
    require_text("hashed_password", hash);
    if (!valid_utf8(username)) return StoreStatus::not_found;
    return update(kSetPasswordHash, username, hash);
  }

  StoreStatus replace_password_hash(std::string_view username, std::string_view old_hash,
                                    std::string_view new_hash) override {
    require_text("hashed_password", new_hash);
    if (!valid_utf8(username) || !valid_utf8(old_hash)) return StoreStatus::not_found;
    const std::string name(username);
    const std::string old_h(old_hash);
    const std::string new_h(new_hash);
    const Forget forget(*this, username);
    return write([&](Connection& c) {
      return c.exec(kReplacePasswordHash, {name.c_str(), old_h.c_str(), new_h.c_str()}).rows() == 1
                 ? StoreStatus::ok
                 : StoreStatus::not_found;
    });
  }

  StoreStatus remove(std::string_view username) override {
    if (!valid_utf8(username)) return StoreStatus::not_found;
    const std::string name(username);
    const Forget forget(*this, username);
    return write([&](Connection& c) {
      return c.exec(kRemove, {name.c_str()}).rows() == 1 ? StoreStatus::ok : StoreStatus::not_found;
    });
  }

  std::vector<User> list_page(std::string_view after, std::size_t limit) override {
    require_text("username", after);
    const std::string from(after);
    const std::string count = std::to_string(std::min<std::size_t>(limit, 1u << 30));
    return read([&](Connection& c) {
      Result r = c.exec(kListPage, {from.c_str(), count.c_str()});
      std::vector<User> users;
      users.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) users.push_back(read_user(r, i));
      return users;
    });
  }

  std::vector<User> list() override {
    return read([&](Connection& c) {
      Result r = c.exec(kList, {});
      std::vector<User> users;
      users.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) users.push_back(read_user(r, i));
      return users;
    });
  }

  bool has_users() override {
    return read([&](Connection& c) {
      return c.exec("has_users", "SELECT 1 FROM users LIMIT 1").rows() > 0;
    });
  }

  std::optional<std::string> setting(std::string_view name) override {
    if (!valid_utf8(name)) return std::nullopt;
    const std::string key(name);
    return read([&](Connection& c) -> std::optional<std::string> {
      Result r = c.exec(kGetSetting, {key.c_str()});
      if (r.rows() == 0) return std::nullopt;
      return r.text(0, 0);
    });
  }

  void set_setting(std::string_view name, std::string_view value) override {
    require_text("setting name", name);
    require_text("setting value", value);
    const std::string key(name), val(value);
    write([&](Connection& c) {
      c.exec(kSetSetting, {key.c_str(), val.c_str()});
      return StoreStatus::ok;
    });
  }

  // Atomic across instances: the INSERT either stores `value` or waits for the
  // concurrent transaction that stored another one and does nothing; the SELECT that
  // follows is a new statement, so it sees that committed winner.
  std::string setting_or_init(std::string_view name, std::string_view value) override {
    require_text("setting name", name);
    require_text("setting value", value);
    const std::string key(name), val(value);
    return read([&](Connection& c) {
      if (c.exec(kInitSetting, {key.c_str(), val.c_str()}).rows() == 1) return val;
      Result r = c.exec(kGetSetting, {key.c_str()});
      if (r.rows() == 0) throw std::runtime_error("postgres: setting '" + key + "' vanished");
      return r.text(0, 0).value_or("");
    });
  }

  bool replace_setting(std::string_view name, std::optional<std::string_view> expected,
                       std::string_view value) override {
    require_text("setting name", name);
    require_text("setting value", value);
    const std::string key(name), val(value);
    if (!expected) {
      return write([&](Connection& c) {
               return c.exec(kInitSetting, {key.c_str(), val.c_str()}).rows() == 1
                          ? StoreStatus::ok
                          : StoreStatus::exists;
             }) == StoreStatus::ok;
    }
    require_text("setting value", *expected);
    const std::string old(*expected);
    return write([&](Connection& c) {
             return c.exec(kCasSetting, {key.c_str(), old.c_str(), val.c_str()}).rows() == 1
                        ? StoreStatus::ok
                        : StoreStatus::not_found;
           }) == StoreStatus::ok;
  }

  std::vector<StoredKey> signing_keys() override {
    return read([&](Connection& c) {
      Result r = c.exec(kListKeys, {});
      std::vector<StoredKey> keys;
      for (int i = 0; i < r.rows(); ++i) {
        StoredKey k;
        k.kid = r.text(i, 0).value_or("");
        k.alg = r.text(i, 1).value_or("");
        k.private_pem = r.text(i, 2).value_or("");
        k.created_at = std::stoll(r.text(i, 3).value_or("0"));
        if (auto v = r.text(i, 4)) k.superseded_at = std::stoll(*v);
        if (auto v = r.text(i, 5)) k.retired_at = std::stoll(*v);
        keys.push_back(std::move(k));
      }
      return keys;
    });
  }

  // A compare-and-set under READ COMMITTED: the UPDATE of the expected current key
  // takes its row lock and re-checks is_current after waiting for a concurrent
  // rotation, so only one of two racing rotations supersedes it; the INSERT of a new
  // current key meets the UNIQUE is_current when another one committed meanwhile (23505).
  // An unconditional rotation (the CLI) that loses such a race tries again.
  bool rotate_signing_key(const StoredKey& key,
                          std::optional<std::string_view> expected_current) override {
    require_text("kid", key.kid);
    require_text("alg", key.alg);
    const std::string created = std::to_string(key.created_at);
    const std::optional<std::string> expected =
        expected_current ? std::optional<std::string>(std::string(*expected_current))
                         : std::nullopt;
    for (int attempt = 0;; ++attempt) {
      bool done = false;
      bool lost_race = false;
      write([&](Connection& c) {
        c.exec("rotate key", "BEGIN");
        try {
          const bool first = expected && expected->empty();
          if (!first) {
            Result r =
                c.exec(kSupersedeKey, {created.c_str(), expected ? expected->c_str() : nullptr});
            if (expected && r.rows() == 0) {  // the current key is not the expected one
              c.exec("rotate key", "ROLLBACK");
              return StoreStatus::not_found;
            }
          }
          c.exec(kInsertKey,
                 {key.kid.c_str(), key.alg.c_str(), key.private_pem.c_str(), created.c_str()});
          c.exec("rotate key", "COMMIT");
          done = true;
        } catch (const PgError& e) {
          if (e.connection_lost || e.sqlstate != "23505") throw;
          c.exec("rotate key", "ROLLBACK");
          lost_race = true;
        }
        return StoreStatus::ok;
      });
      if (done || !lost_race || expected || attempt >= 5) return done;
    }
  }

  StoreStatus retire_signing_key(std::string_view kid, std::int64_t at) override {
    if (!valid_utf8(kid)) return StoreStatus::not_found;
    const std::string k(kid), when = std::to_string(at);
    return write([&](Connection& c) {
      return c.exec(kRetireKey, {k.c_str(), when.c_str()}).rows() == 1 ? StoreStatus::ok
                                                                       : StoreStatus::not_found;
    });
  }

  // ---- refresh tokens and revocations (TokenStore) ----
  void add_refresh_token(const RefreshTokenRecord& t) override {
    require_text("username", t.username);
    require_text("scope", t.scope);
    write([&](Connection& c) {
      insert_refresh(c, t);
      return StoreStatus::ok;
    });
  }

  std::optional<RefreshTokenRecord> find_refresh_token(std::string_view hash,
                                                       std::int64_t now) override {
    if (!valid_utf8(hash)) return std::nullopt;
    const std::string h(hash), n = std::to_string(now);
    return read([&](Connection& c) -> std::optional<RefreshTokenRecord> {
      Result r = c.exec(kFindRefresh, {h.c_str(), n.c_str()});
      if (r.rows() == 0) return std::nullopt;
      return read_refresh(r);
    });
  }

  RotateStatus rotate_refresh_token(std::string_view hash, std::string_view successor_hash,
                                    std::string_view scope, std::int64_t now,
                                    std::int64_t idle_seconds, std::int64_t grace_seconds,
                                    RefreshTokenRecord& successor) override {
    if (!valid_utf8(hash) || !valid_utf8(successor_hash)) return RotateStatus::unknown;
    require_text("scope", scope);
    const std::string h(hash), next(successor_hash), n = std::to_string(now);
    RotateStatus status = RotateStatus::unknown;
    write([&](Connection& c) {
      c.exec("rotate refresh token", "BEGIN");
      try {
        Result r = c.exec(kLockRefresh, {h.c_str()});
        if (r.rows() == 0) {
          status = RotateStatus::unknown;
        } else {
          RefreshTokenRecord old = read_refresh(r);
          const auto spent = r.text(0, 7);
          const std::string stored_next = r.text(0, 8).value_or("");
          if (!spent) {
            if (old.expires_at < now || old.family_expires_at < now) {
              status = RotateStatus::unknown;
            } else {
              c.exec(kSpendRefresh, {h.c_str(), n.c_str(), next.c_str()});
              successor = old;
              successor.hash = next;
              successor.scope = std::string(scope);
              successor.expires_at = std::min(now + idle_seconds, old.family_expires_at);
              insert_refresh(c, successor);
              status = RotateStatus::rotated;
            }
          } else {
            bool replayed = false;
            if (now - std::stoll(*spent) < grace_seconds && stored_next == next) {
              Result s = c.exec(kFindUnspent, {next.c_str()});
              if (s.rows() == 1) {
                successor = read_refresh(s);
                replayed = true;
              }
            }
            if (replayed) {
              status = RotateStatus::replayed;
            } else {
              c.exec(kRevokeFamily, {old.family.c_str()});
              status = RotateStatus::reused;
            }
          }
        }
        c.exec("rotate refresh token", "COMMIT");
      } catch (const PgError& e) {
        if (!e.connection_lost) {
          try {
            c.exec("rotate refresh token", "ROLLBACK");
          } catch (const std::exception&) {  // the connection is going away anyway
          }
        }
        throw;
      }
      return StoreStatus::ok;
    });
    return status;
  }

  bool revoke_refresh_family(std::string_view family) override {
    if (!valid_utf8(family)) return false;
    const std::string f(family);
    return write([&](Connection& c) {
             return c.exec(kRevokeFamily, {f.c_str()}).rows() > 0 ? StoreStatus::ok
                                                                  : StoreStatus::not_found;
           }) == StoreStatus::ok;
  }

  void deny_access_token(std::string_view key, std::int64_t expires_at) override {
    require_text("key", key);
    const std::string k(key), e = std::to_string(expires_at);
    write([&](Connection& c) {
      c.exec(kDeny, {k.c_str(), e.c_str()});
      return StoreStatus::ok;
    });
  }

  std::vector<DeniedToken> denied_since(std::int64_t after, std::int64_t now) override {
    const std::string a = std::to_string(after), n = std::to_string(now);
    return read([&](Connection& c) {
      Result r = c.exec(kDeniedSince, {a.c_str(), n.c_str()});
      std::vector<DeniedToken> out;
      for (int i = 0; i < r.rows(); ++i) {
        out.push_back({std::stoll(r.text(i, 0).value_or("0")), r.text(i, 1).value_or(""),
                       std::stoll(r.text(i, 2).value_or("0"))});
      }
      return out;
    });
  }

  void prune_tokens(std::int64_t now) override {
    const std::string n = std::to_string(now);
    write([&](Connection& c) {
      c.exec(kPruneDenied, {n.c_str()});
      c.exec(kPruneRefresh, {n.c_str()});
      return StoreStatus::ok;
    });
  }

  bool created() const override { return created_; }

  // ---- messages between instances (ChangeFeed), on the watcher's connection ----
  bool available() const override { return options_.watch; }

  std::uint64_t subscribe(std::string_view channel, Handler on_message, Resync on_resync) override {
    if (!options_.watch) throw std::logic_error("postgres: this store has no watcher to listen");
    if (channel != kRevocations && channel != kThrottle) {
      throw std::invalid_argument("postgres: no such channel: " + std::string(channel));
    }
    std::lock_guard lock(subscribers_mutex_);
    const std::uint64_t id = ++last_subscriber_;
    subscribers_.push_back({id, std::string(channel), std::move(on_message), std::move(on_resync)});
    return id;
  }

  void unsubscribe(std::uint64_t id) override {
    std::lock_guard lock(subscribers_mutex_);
    std::erase_if(subscribers_, [id](const Subscriber& s) { return s.id == id; });
  }

  void publish(std::string_view channel, std::string_view payload) override {
    if (payload.size() > kMaxPayload) throw std::invalid_argument("postgres: payload too long");
    require_text("channel", channel);
    require_text("payload", payload);
    const std::string ch(channel), body(payload);
    write([&](Connection& c) {
      c.exec(kPublish, {ch.c_str(), body.c_str()});
      return StoreStatus::ok;
    });
  }

  // ---- brute-force counters (ThrottleCounters): one short statement each ----
  // Keys are ASCII ("user:<sha-256 hex>", "client:<address>").
  std::int64_t blocked_until(const std::vector<std::string>& keys) override {
    std::int64_t until = 0;
    for (std::size_t i = 0; i < keys.size(); i += 2) {
      const std::string& a = keys[i];
      const std::string& b = i + 1 < keys.size() ? keys[i + 1] : keys[i];
      read([&](Connection& c) {
        Result r = c.exec(kBlockedUntil, {a.c_str(), b.c_str()});
        until = std::max<std::int64_t>(until, std::stoll(r.text(0, 0).value_or("0")));
        return 0;
      });
    }
    return until;
  }

  std::vector<double> add_failure(const std::vector<Hit>& hits, std::int64_t now_ms) override {
    std::vector<double> scores;
    const std::string now = std::to_string(now_ms);
    for (const auto& h : hits) {
      require_text("throttle key", h.key);
      const std::string leak = std::to_string(h.leak_ms > 0 ? h.leak_ms : 1e300);
      write([&](Connection& c) {
        Result r = c.exec(kAddFailure, {h.key.c_str(), now.c_str(), leak.c_str()});
        scores.push_back(std::stod(r.text(0, 0).value_or("1")));
        return StoreStatus::ok;
      });
    }
    return scores;
  }

  void block(const std::string& key, std::int64_t until_ms) override {
    const std::string until = std::to_string(until_ms);
    write([&](Connection& c) {
      c.exec(kBlock, {key.c_str(), until.c_str()});
      return StoreStatus::ok;
    });
  }

  void reset(const std::string& key) override {
    write([&](Connection& c) {
      c.exec(kResetFailures, {key.c_str()});
      return StoreStatus::ok;
    });
  }

  void purge(std::int64_t before_ms) override {
    const std::string before = std::to_string(before_ms);
    write([&](Connection& c) {
      c.exec(kPurgeFailures, {before.c_str()});
      return StoreStatus::ok;
    });
  }

 private:
  static RefreshTokenRecord read_refresh(const Result& r) {
    RefreshTokenRecord t;
    t.hash = r.text(0, 0).value_or("");
    t.family = r.text(0, 1).value_or("");
    t.username = r.text(0, 2).value_or("");
    t.scope = r.text(0, 3).value_or("");
    t.expires_at = std::stoll(r.text(0, 4).value_or("0"));
    t.family_expires_at = std::stoll(r.text(0, 5).value_or("0"));
    t.spent = r.text(0, 6).value_or("f") == "t";
    return t;
  }
  static void insert_refresh(Connection& c, const RefreshTokenRecord& t) {
    const std::string e = std::to_string(t.expires_at), f = std::to_string(t.family_expires_at);
    c.exec(kAddRefresh, {t.hash.c_str(), t.family.c_str(), t.username.c_str(), t.scope.c_str(),
                         e.c_str(), f.c_str()});
  }
  // A pooled connection, returned to the pool (or closed, if broken) when it goes.
  class Lease {
   public:
    Lease(PostgresStore& store, std::unique_ptr<Connection> c)
        : store_(store), conn_(std::move(c)) {}
    ~Lease() { store_.release(std::move(conn_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() const { return *conn_; }

   private:
    PostgresStore& store_;
    std::unique_ptr<Connection> conn_;
  };

  // This process's cached copy of a user it changes goes when the change is made
  // (whether or not it committed: a lost connection leaves that unknown); other
  // processes drop theirs when the NOTIFY the change sent reaches their watcher.
  class Forget {
   public:
    Forget(PostgresStore& store, std::string_view name) : store_(store), name_(name) {}
    ~Forget() {
      if (store_.cache_) store_.cache_->forget(name_);
    }
    Forget(const Forget&) = delete;
    Forget& operator=(const Forget&) = delete;

   private:
    PostgresStore& store_;
    std::string name_;
  };

  // Before any round trip: never on a thread that must not block (the server runs the
  // request again on a store thread), and not while the watcher knows the database is
  // not answering (every call would wait out the time limit for nothing).
  void before_round_trip() {
    if (BlockingForbidden::active()) throw StoreWouldBlock{};
    if (down_.load()) {
      std::lock_guard lock(reason_mutex_);
      throw StoreUnavailable(down_reason_);
    }
  }

  // The database did not answer in time, or refused to connect: with a watcher, calls
  // fail at once from now on until the watcher reaches it again.
  void note_unreachable(const std::string& why) {
    if (!options_.watch) return;
    set_down(why);
    wake();  // the watcher checks at once
  }

  // When a connection turns out dead (server restart or failover, a proxy or
  // pg_terminate_backend closing it), the other idle ones probably are too: all are
  // dropped, and a read is retried once, on a new connection. Errors that mean "not
  // now" (transient()) become StoreUnavailable.
  template <class F>
  std::invoke_result_t<F&, Connection&> read(F&& f) {
    for (int attempt = 0;; ++attempt) {
      before_round_trip();
      Lease lease(*this, acquire());
      try {
        return f(*lease);
      } catch (const PgError& e) {
        if (!e.connection_lost) {
          if (transient(e)) throw StoreUnavailable(e.what());
          throw;
        }
        drop_idle();
        if (attempt > 0) throw StoreUnavailable(e.what());
      } catch (const StoreUnavailable& e) {
        note_unreachable(e.what());
        throw;
      }
    }
  }

  // Writes are not retried: a write whose connection died may have committed, and
  // running it again could answer `exists` or `not_found` for a change that happened.
  template <class F>
  StoreStatus write(F&& f) {
    before_round_trip();
    Lease lease(*this, acquire());
    try {
      return f(*lease);
    } catch (const PgError& e) {
      if (e.connection_lost) drop_idle();
      if (transient(e)) throw StoreUnavailable(e.what());
      throw;
    } catch (const StoreUnavailable& e) {
      note_unreachable(e.what());
      throw;
    }
  }

  // ---- the watcher: LISTEN for changes, notice when the database stops answering ----

  std::unique_ptr<Connection> listen() {
    auto c = std::make_unique<Connection>(url_, password_, redactor_, limits_, "gatehouse-watch");
    c->exec("listen",
            "LISTEN gatehouse_users; LISTEN gatehouse_revoked; LISTEN gatehouse_throttle");
    if (cache_) cache_->reset(true);  // nothing cached before this point can be trusted
    listening_ = true;
    set_up();
    return c;
  }

  // Runs until the store is destroyed. While connected it waits for notifications and,
  // after a second without traffic (or at once when a call found the database
  // unreachable), checks that the server still answers. When the connection is lost
  // or the server stops answering, the cache is emptied and disabled, and a new
  // connection is tried every 250 ms; the first that works (and LISTENs) re-enables
  // the cache and lets calls through again.
  void watch(std::unique_ptr<Connection> conn) {
    constexpr auto kPing = std::chrono::seconds(1);
    constexpr auto kRetry = std::chrono::milliseconds(250);
    auto last_heard = Clock::now();
    while (!stopping_) {
      if (!conn) {
        try {
          conn = listen();
          last_heard = Clock::now();
          resync();  // what was announced while no connection listened never arrives
        } catch (const std::exception& e) {
          set_down(e.what());
          pause(kRetry);
          continue;
        }
      }
      const bool check_now = down_.load();
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(last_heard + kPing - Clock::now());
      pollfd fds[2] = {{conn->socket(), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      const int timeout = check_now ? 0 : static_cast<int>(std::max<long long>(0, wait.count()));
      if (::poll(fds, 2, timeout) < 0 && errno != EINTR) fds[0].revents = POLLERR;
      drain_wake();
      if (stopping_) break;
      bool ok = true;
      if (fds[0].revents != 0) {
        ok = conn->consume();
        if (ok) last_heard = Clock::now();
      }
      if (ok && (down_.load() || Clock::now() - last_heard >= kPing)) {
        try {
          conn->exec("ping", "SELECT 1");
          last_heard = Clock::now();
          set_up();
        } catch (const std::exception& e) {
          // No answer (or an error) to a ping: the database is not answering. Calls fail
          // at once from now on instead of each waiting out the limit.
          set_down(e.what());
          ok = false;
        }
      }
      if (ok) {
        while (auto note = conn->notification()) {
          const auto& [channel, payload] = *note;
          if (channel != "gatehouse_users") {
            deliver(channel, payload);
          } else if (!cache_) {
            continue;
          } else if (payload.empty()) {
            cache_->reset(true);  // a name too long for a payload: drop them all
          } else {
            cache_->forget(payload);
          }
        }
        continue;
      }
      // Lost: what was cached may have changed unannounced meanwhile.
      listening_ = false;
      if (cache_) cache_->reset(false);
      conn.reset();
    }
    listening_ = false;
  }

  // Hands a notification to the subscribers of its channel (on the watcher thread).
  void deliver(const std::string& channel, const std::string& payload) {
    std::lock_guard lock(subscribers_mutex_);
    for (const auto& s : subscribers_) {
      if (s.channel != channel || !s.on_message) continue;
      try {
        s.on_message(payload);
      } catch (const std::exception&) {
        // A subscriber that cannot use a message must not stop the watcher.
      }
    }
  }
  void resync() {
    std::lock_guard lock(subscribers_mutex_);
    for (const auto& s : subscribers_) {
      if (!s.on_resync) continue;
      try {
        s.on_resync();
      } catch (const std::exception&) {
      }
    }
  }

  void set_down(const std::string& why) {
    {
      std::lock_guard lock(reason_mutex_);
      down_reason_ = why;
    }
    // The cache stays as it is while the LISTEN connection is up (no change can be
    // missed); losing that connection is what empties it.
    down_ = true;
  }
  void set_up() { down_ = false; }

  void wake() {
    const char c = 1;
    if (wake_[1] >= 0 && ::write(wake_[1], &c, 1) < 0) {
      // Full already: the watcher is about to wake anyway.
    }
  }
  void drain_wake() {
    char buf[64];
    while (wake_[0] >= 0 && ::read(wake_[0], buf, sizeof buf) > 0) {
    }
  }
  // Sleeps `d`, or less when woken to stop.
  void pause(std::chrono::milliseconds d) {
    pollfd p{wake_[0], POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(d.count()));
    drain_wake();
  }

  void drop_idle() {
    std::vector<std::unique_ptr<Connection>> dead;
    {
      std::lock_guard lock(mutex_);
      dead.swap(idle_);
      open_ -= dead.size();
    }
    available_.notify_all();
  }  // closed here, outside the lock

  StoreStatus update(Stmt stmt, std::string_view username, std::string_view value) {
    const std::string name(username), val(value);
    const Forget forget(*this, username);
    return write([&](Connection& c) {
      return c.exec(stmt, {name.c_str(), val.c_str()}).rows() == 1 ? StoreStatus::ok
                                                                   : StoreStatus::not_found;
    });
  }

  void migrate(Connection& c) {
    // Another instance may hold the migration lock while it migrates, and a migration
    // may take long on a big table: the short limits do not apply here.
    c.set_client_limit(std::chrono::minutes(10));
    c.exec("migrate", "BEGIN");
    c.exec("migrate", "SET LOCAL statement_timeout = 0");
    try {
      c.exec("migrate",
             ("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")").c_str());
      c.exec("migrate", "SET LOCAL client_min_messages = warning");  // no "already exists" notices
      c.exec("migrate",
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
      Result r = c.exec("migrate", "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      const int current = std::stoi(r.text(0, 0).value_or("0"));
      const int latest = static_cast<int>(std::size(kMigrations));
      for (int v = current + 1; v <= latest; ++v) {
        const std::string what = "migration " + std::to_string(v);
        c.exec(what.c_str(), kMigrations[v - 1]);
        c.exec(
            what.c_str(),
            ("INSERT INTO schema_migrations (version) VALUES (" + std::to_string(v) + ")").c_str());
      }
      c.exec("migrate", "COMMIT");
      c.set_client_limit(std::chrono::milliseconds(0));
      created_ = current == 0;
    } catch (...) {
      if (c.idle()) throw;
      try {
        c.exec("migrate", "ROLLBACK");
      } catch (const std::exception&) {  // the connection is going away anyway
      }
      throw;
    }
  }

  std::unique_ptr<Connection> acquire() {
    const auto deadline = Clock::now() + limits_.client();
    std::unique_lock lock(mutex_);
    while (true) {
      while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        lock.unlock();
        if (c->usable()) return c;
        c.reset();  // closed outside the lock
        lock.lock();
        --open_;
      }
      if (open_ < kMaxConnections) break;
      if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= kMaxConnections) {
        throw StoreUnavailable("postgres: all " + std::to_string(kMaxConnections) +
                               " connections to " + redactor_.safe_url() + " stayed busy for " +
                               seconds_text(limits_.client()));
      }
    }
    ++open_;
    lock.unlock();
    try {
      return std::make_unique<Connection>(url_, password_, redactor_, limits_, "gatehouse");
    } catch (...) {
      lock.lock();
      --open_;
      available_.notify_one();
      throw;
    }
  }

  void release(std::unique_ptr<Connection> c) {
    if (c && !c->idle()) c.reset();  // broken, or left inside a transaction
    {
      std::lock_guard lock(mutex_);
      if (c) {
        idle_.push_back(std::move(c));
      } else {
        --open_;
      }
    }
    available_.notify_one();
  }

  static Redactor redactor_for(const std::string& url, const std::string& password) {
    Redactor r(url);
    r.add_secret(password);
    return r;
  }

  const std::string url_;
  const std::string password_;  // from a password file; empty: the URL's, or libpq's own
  const Redactor redactor_;
  const PostgresOptions options_;
  const Limits limits_;
  bool created_ = false;
  std::unique_ptr<SharedUserCache> cache_;  // with a watcher and a budget only
  struct Subscriber {
    std::uint64_t id;
    std::string channel;
    Handler on_message;
    Resync on_resync;
  };
  std::mutex subscribers_mutex_;
  std::vector<Subscriber> subscribers_;
  std::uint64_t last_subscriber_ = 0;
  // The watcher's state: down_ while the database does not answer (calls fail at once
  // with down_reason_), listening_ while the LISTEN connection is up.
  std::atomic<bool> down_{false};
  std::atomic<bool> listening_{false};
  mutable std::mutex reason_mutex_;
  std::string down_reason_;
  std::atomic<bool> stopping_{false};
  int wake_[2] = {-1, -1};
  std::thread watcher_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;  // idle plus leased
};

}  // namespace

std::unique_ptr<UserStore> open_postgres_store(const std::string& url, const std::string& password,
                                               const PostgresOptions& options) {
  return std::make_unique<PostgresStore>(url, password, options);
}

}  // namespace gatehouse
