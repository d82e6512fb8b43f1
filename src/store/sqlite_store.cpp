// The embedded store: one SQLite file in WAL mode with synchronous=FULL (an
// acknowledged write survives a power cut), created 0600, with numbered migrations.
// Connections are pooled; each is used by one thread at a time.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>

#include "gatehouse/keys.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/throttle.hpp"
#include "store/lru.hpp"

namespace gatehouse {

namespace {

// Migration N brings the schema from version N-1 to N. Never edit one that shipped.
constexpr const char* kMigrations[] = {
    // 1: users and settings.
    R"sql(
CREATE TABLE users (
  username        TEXT PRIMARY KEY NOT NULL,
  email           TEXT,
  full_name       TEXT,
  disabled        INTEGER NOT NULL DEFAULT 0,
  hashed_password TEXT NOT NULL,
  created_at      INTEGER NOT NULL DEFAULT (unixepoch()),
  updated_at      INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE TABLE settings (
  name  TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
)sql",
    // 2: the scopes each user may be granted, space-separated ('' = any).
    R"sql(
ALTER TABLE users ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
)sql",
    // 3: signing keys (RS256/ES256/EdDSA). is_current is 1 for the one key that signs
    // and NULL for the others; UNIQUE lets at most one row have it.
    R"sql(
CREATE TABLE signing_keys (
  kid           TEXT PRIMARY KEY NOT NULL,
  alg           TEXT NOT NULL,
  private_key   TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  superseded_at INTEGER,
  retired_at    INTEGER,
  is_current    INTEGER UNIQUE CHECK (is_current = 1)
);
)sql",
    // 4: brute-force counters (throttle.hpp): a key's leaky failure score and block.
    R"sql(
CREATE TABLE login_failures (
  key              TEXT PRIMARY KEY NOT NULL,
  score            REAL NOT NULL,
  updated_ms       INTEGER NOT NULL,
  blocked_until_ms INTEGER NOT NULL DEFAULT 0
);
)sql",
    // 5: refresh tokens (by SHA-256; a family is one login's chain of rotations) and
    // the access tokens revoked before they expire (by SHA-256 of their signature).
    R"sql(
CREATE TABLE refresh_tokens (
  hash              TEXT PRIMARY KEY NOT NULL,
  family            TEXT NOT NULL,
  username          TEXT NOT NULL,
  scope             TEXT NOT NULL,
  expires_at        INTEGER NOT NULL,
  family_expires_at INTEGER NOT NULL,
  spent_at          INTEGER,
  successor         TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE TABLE revoked_tokens (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  key        TEXT UNIQUE NOT NULL,
  expires_at INTEGER NOT NULL
);
)sql",
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Statement& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Statement& bind(int i, const std::optional<std::string>& text) {
    if (text) return bind(i, std::string_view(*text));
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  Statement& bind(int i, int value) {
    sqlite3_bind_int(stmt_, i, value);
    return *this;
  }
  Statement& bind(int i, std::int64_t value) {
    sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }
  Statement& bind(int i, double value) {
    sqlite3_bind_double(stmt_, i, value);
    return *this;
  }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::optional<std::string> text(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    const auto* p = sqlite3_column_text(stmt_, col);
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int integer(int col) const { return sqlite3_column_int(stmt_, col); }
  std::int64_t integer64(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* kUserColumns =
    "username, email, full_name, disabled, hashed_password, scopes";

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    auto j = text.find(' ', i);
    if (j == std::string_view::npos) j = text.size();
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

User read_user(const Statement& s) {
  User u;
  u.username = s.text(0).value_or("");
  u.email = s.text(1);
  u.full_name = s.text(2);
  u.disabled = s.integer(3) != 0;
  u.hashed_password = s.text(4).value_or("");
  u.scopes = split_words(s.text(5).value_or(""));
  return u;
}

class Connection {
 public:
  explicit Connection(const std::filesystem::path& file) {
    int rc =
        sqlite3_open_v2(file.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open " + file.string() + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 5000);
    // Switching a new database to WAL answers SQLITE_BUSY at once, without the busy
    // handler, while another connection does the same: retry for up to 5 s.
    for (int attempt = 0;; ++attempt) {
      int wal = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
      if (wal == SQLITE_OK) break;
      if (wal != SQLITE_BUSY || attempt >= 500) exec("PRAGMA journal_mode=WAL");  // throws
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
  }
  ~Connection() {
    find_.reset();
    prepared_.clear();
    sqlite3_close(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error("sqlite: " + msg);
    }
  }
  sqlite3* db() const { return db_; }
  // Prepared on first use (after migrations), then reused for every lookup.
  Statement& find_stmt() {
    if (!find_) {
      find_ = std::make_unique<Statement>(
          db_, (std::string("SELECT ") + kUserColumns + " FROM users WHERE username = ?1").c_str());
    }
    return *find_;
  }
  // `sql` (a string literal: its address is the key) prepared once per connection,
  // reset and unbound: the caller steps it and resets it when done (an unfinished
  // SELECT would hold its read transaction open).
  Statement& prepared(const char* sql) {
    auto& s = prepared_[sql];
    if (!s) s = std::make_unique<Statement>(db_, sql);
    s->reset();
    return *s;
  }

 private:
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statement> find_;
  std::unordered_map<const char*, std::unique_ptr<Statement>> prepared_;
};

class SqliteStore final : public UserStore, public ThrottleCounters, public TokenStore {
 public:
  SqliteStore(std::filesystem::path file, const SqliteOptions& options)
      : file_(std::move(file)), cache_bytes_(options.user_cache_bytes) {
    static std::once_flag configured;
    // No global allocation statistics: they take a process-wide mutex per malloc.
    std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    // Create the file 0600 before SQLite does, so it is never readable by others; an
    // existing one must be this user's and closed to group and others (whoever else
    // owns it chooses the users). The descriptor stays open for the store's life:
    // closing any descriptor of a file drops every POSIX lock this process holds on
    // it, SQLite's included.
    db_fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (db_fd_ >= 0) {
      ::fchmod(db_fd_, 0600);
    } else if (errno == EEXIST) {
      db_fd_ = ::open(file_.c_str(), O_RDWR | O_CLOEXEC);
      if (db_fd_ < 0) throw std::runtime_error("cannot open " + file_.string());
      try {
        require_private_file(db_fd_, file_);
        for (const char* suffix : {"-wal", "-shm"}) {
          const std::filesystem::path side = file_.string() + suffix;
          const int fd = ::open(side.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) continue;
          try {
            require_private_file(fd, side);
          } catch (...) {
            ::close(fd);
            throw;
          }
          ::close(fd);
        }
      } catch (...) {
        ::close(db_fd_);
        throw;
      }
    } else {
      throw std::runtime_error("cannot create " + file_.string() + ": " + std::strerror(errno));
    }
    auto conn = std::make_unique<Connection>(file_);
    migrate(*conn);
    // A read makes sure the WAL index exists; this connection stays open (it is the
    // anchor that keeps the -shm file alive while the store is open).
    conn->exec("SELECT count(*) FROM schema_migrations");
    for (const char* suffix : {"-wal", "-shm"}) {
      auto side = file_.string() + suffix;
      ::chmod(side.c_str(), 0600);
    }
    map_wal_index();
    anchor_ = std::move(conn);
  }

  ~SqliteStore() override {
    // Every SQLite connection first, then the mapping and the descriptors that kept
    // this process's locks on the files safe.
    readers_.clear();
    pool_.clear();
    anchor_.reset();
    if (wal_map_ != nullptr) ::munmap(wal_map_, 136);
    if (shm_fd_ >= 0) ::close(shm_fd_);
    if (db_fd_ >= 0) ::close(db_fd_);
  }

  // Lookups run on a connection of the calling thread's own, through a small cache
  // of that thread's. The cache is dropped whenever the WAL-index header (or PRAGMA
  // data_version) says another connection (this process's writers, or `gatehouse
  // user ...` in another process) committed, so a disabled or deleted user takes effect
  // on the next request. Only users that exist are cached, in a least-recently-used
  // list bounded in bytes: a request naming an unknown user (anyone can send millions)
  // leaves nothing behind.
  UserPtr find(std::string_view username) override {
    Reader& r = reader();
    const Version version = data_version(r);
    if (version != r.version) {
      r.cache.clear();
      r.version = version;
    }
    if (UserPtr* hit = r.cache.get(username)) return *hit;
    auto& s = r.conn->find_stmt();
    s.bind(1, username);
    UserPtr result;
    if (s.step() == SQLITE_ROW) result = std::make_shared<const User>(read_user(s));
    s.reset();
    if (result) r.cache.put(result->username, result, cost_of(*result));
    return result;
  }

  StoreStatus add(const User& user) override {
    return write([&](Connection& c) {
      Statement s(
          c.db(),
          "INSERT INTO users (username, email, full_name, disabled, hashed_password, scopes) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(username) DO NOTHING");
      s.bind(1, user.username).bind(2, user.email).bind(3, user.full_name);
      s.bind(4, user.disabled ? 1 : 0)
          .bind(5, user.hashed_password)
          .bind(6, join_words(user.scopes));
      check(c, s.step());
      return sqlite3_changes(c.db()) == 1 ? StoreStatus::ok : StoreStatus::exists;
    });
  }

  StoreStatus set_disabled(std::string_view username, bool disabled) override {
    return update("UPDATE users SET disabled = ?2, updated_at = unixepoch() WHERE username = ?1",
                  username, disabled ? "1" : "0");
  }

  StoreStatus set_password_hash(std::string_view username, std::string_view hash) override {
    return update(
        "UPDATE users SET hashed_password = ?2, updated_at = unixepoch() WHERE username = ?1",
        username, hash);
  }

  StoreStatus replace_password_hash(std::string_view username, std::string_view old_hash,
                                    std::string_view new_hash) override {
    return write([&](Connection& c) {
      Statement s(c.db(),
                  "UPDATE users SET hashed_password = ?3, updated_at = unixepoch() "
                  "WHERE username = ?1 AND hashed_password = ?2");
      s.bind(1, username).bind(2, old_hash).bind(3, new_hash);
      check(c, s.step());
      return sqlite3_changes(c.db()) == 1 ? StoreStatus::ok : StoreStatus::not_found;
    });
  }

  StoreStatus remove(std::string_view username) override {
    return write([&](Connection& c) {
      Statement s(c.db(), "DELETE FROM users WHERE username = ?1");
      s.bind(1, username);
      check(c, s.step());
      return sqlite3_changes(c.db()) == 1 ? StoreStatus::ok : StoreStatus::not_found;
    });
  }

  std::vector<User> list_page(std::string_view after, std::size_t limit) override {
    auto conn = acquire();
    std::vector<User> users;
    {
      Statement s(conn->db(), (std::string("SELECT ") + kUserColumns +
                               " FROM users WHERE username > ?1 ORDER BY username LIMIT ?2")
                                  .c_str());
      s.bind(1, after).bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 30)));
      while (s.step() == SQLITE_ROW) users.push_back(read_user(s));
    }
    release(std::move(conn));
    return users;
  }

  std::vector<User> list() override {
    auto conn = acquire();
    std::vector<User> users;
    {
      Statement s(
          conn->db(),
          (std::string("SELECT ") + kUserColumns + " FROM users ORDER BY username").c_str());
      while (s.step() == SQLITE_ROW) users.push_back(read_user(s));
    }
    release(std::move(conn));
    return users;
  }

  bool has_users() override {
    auto conn = acquire();
    bool any = false;
    {
      Statement s(conn->db(), "SELECT 1 FROM users LIMIT 1");
      any = s.step() == SQLITE_ROW;
    }
    release(std::move(conn));
    return any;
  }

  std::optional<std::string> setting(std::string_view name) override {
    auto conn = acquire();
    std::optional<std::string> value;
    {
      Statement s(conn->db(), "SELECT value FROM settings WHERE name = ?1");
      s.bind(1, name);
      if (s.step() == SQLITE_ROW) value = s.text(0);
    }
    release(std::move(conn));
    return value;
  }

  void set_setting(std::string_view name, std::string_view value) override {
    write([&](Connection& c) {
      Statement s(c.db(),
                  "INSERT INTO settings (name, value) VALUES (?1, ?2) "
                  "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
      s.bind(1, name).bind(2, value);
      check(c, s.step());
      return StoreStatus::ok;
    });
  }

  std::string setting_or_init(std::string_view name, std::string_view value) override {
    write([&](Connection& c) {
      Statement s(
          c.db(),
          "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING");
      s.bind(1, name).bind(2, value);
      check(c, s.step());
      return StoreStatus::ok;
    });
    return setting(name).value_or(std::string(value));
  }

  bool replace_setting(std::string_view name, std::optional<std::string_view> expected,
                       std::string_view value) override {
    return write([&](Connection& c) {
             if (!expected) {
               Statement s(c.db(),
                           "INSERT INTO settings (name, value) VALUES (?1, ?2) "
                           "ON CONFLICT(name) DO NOTHING");
               s.bind(1, name).bind(2, value);
               check(c, s.step());
             } else {
               Statement s(c.db(), "UPDATE settings SET value = ?3 WHERE name = ?1 AND value = ?2");
               s.bind(1, name).bind(2, *expected).bind(3, value);
               check(c, s.step());
             }
             return sqlite3_changes(c.db()) == 1 ? StoreStatus::ok : StoreStatus::not_found;
           }) == StoreStatus::ok;
  }

  std::vector<StoredKey> signing_keys() override {
    auto conn = acquire();
    std::vector<StoredKey> keys;
    try {
      Statement s(
          conn->db(),
          "SELECT kid, alg, private_key, created_at, superseded_at, retired_at "
          "FROM signing_keys ORDER BY created_at, superseded_at IS NULL, superseded_at, kid");
      int rc = 0;
      while ((rc = s.step()) == SQLITE_ROW) {
        StoredKey k;
        k.kid = s.text(0).value_or("");
        k.alg = s.text(1).value_or("");
        k.private_pem = s.text(2).value_or("");
        k.created_at = s.integer64(3);
        if (s.text(4)) k.superseded_at = s.integer64(4);
        if (s.text(5)) k.retired_at = s.integer64(5);
        keys.push_back(std::move(k));
      }
      check(*conn, rc);
    } catch (...) {
      release(std::move(conn));
      throw;
    }
    release(std::move(conn));
    return keys;
  }

  bool rotate_signing_key(const StoredKey& key,
                          std::optional<std::string_view> expected_current) override {
    bool done = false;
    write([&](Connection& c) {
      c.exec("BEGIN IMMEDIATE");
      try {
        std::string current;
        {
          Statement s(c.db(), "SELECT kid FROM signing_keys WHERE is_current = 1");
          if (s.step() == SQLITE_ROW) current = s.text(0).value_or("");
        }
        if (!expected_current || *expected_current == current) {
          Statement old(c.db(),
                        "UPDATE signing_keys SET is_current = NULL, superseded_at = ?1 "
                        "WHERE is_current = 1");
          old.bind(1, key.created_at);
          check(c, old.step());
          Statement s(c.db(),
                      "INSERT INTO signing_keys (kid, alg, private_key, created_at, is_current) "
                      "VALUES (?1, ?2, ?3, ?4, 1)");
          s.bind(1, key.kid).bind(2, key.alg).bind(3, key.private_pem);
          s.bind(4, key.created_at);
          check(c, s.step());
          done = true;
        }
        c.exec("COMMIT");
      } catch (...) {
        c.exec("ROLLBACK");
        throw;
      }
      return StoreStatus::ok;
    });
    return done;
  }

  StoreStatus retire_signing_key(std::string_view kid, std::int64_t at) override {
    return write([&](Connection& c) {
      Statement s(c.db(),
                  "UPDATE signing_keys SET retired_at = ?2, is_current = NULL, "
                  "superseded_at = COALESCE(superseded_at, ?2) "
                  "WHERE kid = ?1 AND retired_at IS NULL");
      s.bind(1, kid).bind(2, at);
      check(c, s.step());
      return sqlite3_changes(c.db()) == 1 ? StoreStatus::ok : StoreStatus::not_found;
    });
  }

  // The WAL-index header (see data_version): any commit, by any process, changes it.
  std::optional<std::uint64_t> change_marker() override {
    if (wal_header_ == nullptr) return std::nullopt;
    const std::uint64_t frames = __atomic_load_n(wal_header_ + 4, __ATOMIC_ACQUIRE);
    const std::uint64_t salt =
        __atomic_load_n(wal_header_ + 8, __ATOMIC_ACQUIRE) ^
        (std::uint64_t{__atomic_load_n(wal_header_ + 9, __ATOMIC_ACQUIRE)} << 32);
    return (frames * 0x9e3779b97f4a7c15ULL) ^ salt;
  }

  // ---- refresh tokens and revocations (TokenStore) ----
  void add_refresh_token(const RefreshTokenRecord& t) override {
    write([&](Connection& c) {
      insert_refresh(c, t);
      return StoreStatus::ok;
    });
  }

  std::optional<RefreshTokenRecord> find_refresh_token(std::string_view hash,
                                                       std::int64_t now) override {
    auto conn = acquire();
    std::optional<RefreshTokenRecord> found;
    try {
      Statement& s = conn->prepared(
          "SELECT hash, family, username, scope, expires_at, family_expires_at, "
          "spent_at IS NOT NULL FROM refresh_tokens WHERE hash = ?1 "
          "AND (expires_at >= ?2 OR spent_at IS NOT NULL) AND family_expires_at >= ?2");
      s.bind(1, hash).bind(2, now);
      const int rc = s.step();
      if (rc == SQLITE_ROW) found = read_refresh(s);
      s.reset();
      check(*conn, rc);
    } catch (...) {
      release(std::move(conn));
      throw;
    }
    release(std::move(conn));
    return found;
  }

  RotateStatus rotate_refresh_token(std::string_view hash, std::string_view successor_hash,
                                    std::string_view scope, std::int64_t now,
                                    std::int64_t idle_seconds, std::int64_t grace_seconds,
                                    RefreshTokenRecord& successor) override {
    auto out = rotate_refresh_tokens(
        {{std::string(hash), std::string(successor_hash), std::string(scope)}}, now, idle_seconds,
        grace_seconds);
    if (out[0].error) std::rethrow_exception(out[0].error);
    successor = std::move(out[0].successor);
    return out[0].status;
  }

  // One BEGIN IMMEDIATE (the write lock first: of two rotations of one token, in any
  // processes, the second reads the first's result) for the whole batch, a savepoint
  // per rotation (one that fails is undone alone), one COMMIT: with synchronous=FULL,
  // one WAL flush for them all.
  std::vector<RotateOutcome> rotate_refresh_tokens(const std::vector<RotateRequest>& batch,
                                                   std::int64_t now, std::int64_t idle_seconds,
                                                   std::int64_t grace_seconds) override {
    std::vector<RotateOutcome> out(batch.size());
    if (batch.empty()) return out;
    write([&](Connection& c) {
      c.exec("BEGIN IMMEDIATE");
      try {
        for (std::size_t i = 0; i < batch.size(); ++i) {
          c.exec("SAVEPOINT rotation");
          try {
            out[i].status =
                rotate_one(c, batch[i], now, idle_seconds, grace_seconds, out[i].successor);
            c.exec("RELEASE rotation");
          } catch (...) {
            out[i] = RotateOutcome{};
            out[i].error = std::current_exception();
            c.exec("ROLLBACK TO rotation");
            c.exec("RELEASE rotation");
          }
        }
        c.exec("COMMIT");
      } catch (...) {
        sqlite3_exec(c.db(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
      return StoreStatus::ok;
    });
    return out;
  }

  bool batches_rotations() const override { return true; }

  bool revoke_refresh_family(std::string_view family) override {
    return write([&](Connection& c) {
             Statement d(c.db(), "DELETE FROM refresh_tokens WHERE family = ?1");
             d.bind(1, family);
             check(c, d.step());
             return sqlite3_changes(c.db()) > 0 ? StoreStatus::ok : StoreStatus::not_found;
           }) == StoreStatus::ok;
  }

  void deny_access_token(std::string_view key, std::int64_t expires_at) override {
    write([&](Connection& c) {
      Statement s(c.db(),
                  "INSERT INTO revoked_tokens (key, expires_at) VALUES (?1, ?2) "
                  "ON CONFLICT(key) DO NOTHING");
      s.bind(1, key).bind(2, expires_at);
      check(c, s.step());
      return StoreStatus::ok;
    });
  }

  std::vector<DeniedToken> denied_since(std::int64_t after, std::int64_t now) override {
    auto conn = acquire();
    std::vector<DeniedToken> out;
    try {
      Statement s(conn->db(),
                  "SELECT seq, key, expires_at FROM revoked_tokens "
                  "WHERE seq > ?1 AND expires_at >= ?2 ORDER BY seq");
      s.bind(1, after).bind(2, now);
      int rc = 0;
      while ((rc = s.step()) == SQLITE_ROW) {
        out.push_back({s.integer64(0), s.text(1).value_or(""), s.integer64(2)});
      }
      check(*conn, rc);
    } catch (...) {
      release(std::move(conn));
      throw;
    }
    release(std::move(conn));
    return out;
  }

  void prune_tokens(std::int64_t now) override {
    write([&](Connection& c) {
      Statement a(c.db(), "DELETE FROM revoked_tokens WHERE expires_at < ?1");
      a.bind(1, now);
      check(c, a.step());
      // Spent tokens stay until their family expires: presenting one revokes the family.
      Statement b(c.db(),
                  "DELETE FROM refresh_tokens WHERE family_expires_at < ?1 "
                  "OR (spent_at IS NULL AND expires_at < ?1)");
      b.bind(1, now);
      check(c, b.step());
      return StoreStatus::ok;
    });
  }

  bool created() const override { return created_; }

  // ---- brute-force counters (ThrottleCounters), shared by every process on the file ----
  std::int64_t blocked_until(const std::vector<std::string>& keys) override {
    if (keys.empty()) return 0;
    auto conn = acquire();
    std::int64_t until = 0;
    {
      Statement s(conn->db(),
                  "SELECT COALESCE(MAX(blocked_until_ms), 0) FROM login_failures "
                  "WHERE key = ?1 OR key = ?2");
      s.bind(1, keys[0]).bind(2, keys.size() > 1 ? keys[1] : keys[0]);
      if (s.step() == SQLITE_ROW) until = s.integer64(0);
      for (std::size_t i = 2; i < keys.size(); ++i) {
        s.reset();
        s.bind(1, keys[i]).bind(2, keys[i]);
        if (s.step() == SQLITE_ROW) until = std::max(until, s.integer64(0));
      }
    }
    release(std::move(conn));
    return until;
  }

  std::vector<double> add_failure(const std::vector<Hit>& hits, std::int64_t now_ms) override {
    std::vector<double> scores;
    write([&](Connection& c) {
      c.exec("BEGIN IMMEDIATE");
      try {
        Statement s(c.db(),
                    "INSERT INTO login_failures (key, score, updated_ms) VALUES (?1, 1, ?2) "
                    "ON CONFLICT(key) DO UPDATE SET "
                    "score = MAX(0, score - MAX(0, excluded.updated_ms - updated_ms) / ?3) + 1, "
                    "updated_ms = MAX(updated_ms, excluded.updated_ms) "
                    "RETURNING score");
        for (const auto& h : hits) {
          s.bind(1, h.key).bind(2, now_ms).bind(3, h.leak_ms > 0 ? h.leak_ms : 1e300);
          if (s.step() != SQLITE_ROW) check(c, SQLITE_ERROR);
          scores.push_back(s.real(0));
          while (s.step() == SQLITE_ROW) {
          }
          s.reset();
        }
        c.exec("COMMIT");
      } catch (...) {
        c.exec("ROLLBACK");
        throw;
      }
      return StoreStatus::ok;
    });
    return scores;
  }

  void block(const std::string& key, std::int64_t until_ms) override {
    write([&](Connection& c) {
      Statement s(c.db(),
                  "UPDATE login_failures SET blocked_until_ms = MAX(blocked_until_ms, ?2) "
                  "WHERE key = ?1");
      s.bind(1, key).bind(2, until_ms);
      check(c, s.step());
      return StoreStatus::ok;
    });
  }

  void reset(const std::string& key) override {
    write([&](Connection& c) {
      Statement s(c.db(), "DELETE FROM login_failures WHERE key = ?1");
      s.bind(1, key);
      check(c, s.step());
      return StoreStatus::ok;
    });
  }

  void purge(std::int64_t before_ms) override {
    write([&](Connection& c) {
      Statement s(c.db(),
                  "DELETE FROM login_failures WHERE updated_ms < ?1 AND blocked_until_ms < ?1");
      s.bind(1, before_ms);
      check(c, s.step());
      return StoreStatus::ok;
    });
  }

 private:
  // One rotation inside the caller's transaction (see TokenStore::rotate_refresh_token).
  static RotateStatus rotate_one(Connection& c, const RotateRequest& r, std::int64_t now,
                                 std::int64_t idle_seconds, std::int64_t grace_seconds,
                                 RefreshTokenRecord& successor) {
    std::optional<RefreshTokenRecord> old;
    std::optional<std::int64_t> spent_at;
    std::string next;
    {
      Statement& s = c.prepared(
          "SELECT hash, family, username, scope, expires_at, family_expires_at, "
          "0, spent_at, successor FROM refresh_tokens WHERE hash = ?1");
      s.bind(1, r.hash);
      const int rc = s.step();
      if (rc == SQLITE_ROW) {
        old = read_refresh(s);
        if (s.text(7)) spent_at = s.integer64(7);
        next = s.text(8).value_or("");
      }
      s.reset();
      check(c, rc);
    }
    if (!old) return RotateStatus::unknown;
    if (!spent_at) {
      if (old->expires_at < now || old->family_expires_at < now) return RotateStatus::unknown;
      Statement& u = c.prepared(
          "UPDATE refresh_tokens SET spent_at = ?2, successor = ?3 "
          "WHERE hash = ?1 AND spent_at IS NULL");
      u.bind(1, r.hash).bind(2, now).bind(3, r.successor_hash);
      const int rc = u.step();
      u.reset();
      check(c, rc);
      successor = *old;
      successor.hash = r.successor_hash;
      successor.scope = r.scope;
      successor.expires_at = std::min(now + idle_seconds, old->family_expires_at);
      insert_refresh(c, successor);
      return RotateStatus::rotated;
    }
    if (now - *spent_at < grace_seconds && !next.empty() && next == r.successor_hash) {
      Statement& s = c.prepared(
          "SELECT hash, family, username, scope, expires_at, family_expires_at, "
          "0 FROM refresh_tokens WHERE hash = ?1 AND spent_at IS NULL");
      s.bind(1, r.successor_hash);
      const int rc = s.step();
      std::optional<RefreshTokenRecord> replay;
      if (rc == SQLITE_ROW) replay = read_refresh(s);
      s.reset();
      check(c, rc);
      if (replay) {
        successor = *replay;
        return RotateStatus::replayed;
      }
    }
    Statement& d = c.prepared("DELETE FROM refresh_tokens WHERE family = ?1");
    d.bind(1, old->family);
    const int rc = d.step();
    d.reset();
    check(c, rc);
    return RotateStatus::reused;
  }

  static RefreshTokenRecord read_refresh(const Statement& s) {
    RefreshTokenRecord r;
    r.hash = s.text(0).value_or("");
    r.family = s.text(1).value_or("");
    r.username = s.text(2).value_or("");
    r.scope = s.text(3).value_or("");
    r.expires_at = s.integer64(4);
    r.family_expires_at = s.integer64(5);
    r.spent = s.integer(6) != 0;
    return r;
  }
  static void insert_refresh(Connection& c, const RefreshTokenRecord& t) {
    Statement& s = c.prepared(
        "INSERT INTO refresh_tokens (hash, family, username, scope, expires_at, "
        "family_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, t.hash).bind(2, t.family).bind(3, t.username).bind(4, t.scope);
    s.bind(5, t.expires_at).bind(6, t.family_expires_at);
    const int rc = s.step();
    s.reset();
    check(c, rc);
  }
  static void check(Connection& c, int rc) {
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(c.db()));
    }
  }

  template <class F>
  StoreStatus write(F&& f) {
    auto conn = acquire();
    StoreStatus status;
    try {
      status = f(*conn);
    } catch (...) {
      release(std::move(conn));
      throw;
    }
    release(std::move(conn));
    return status;
  }

  StoreStatus update(const char* sql, std::string_view username, std::string_view value) {
    return write([&](Connection& c) {
      Statement s(c.db(), sql);
      s.bind(1, username).bind(2, value);
      check(c, s.step());
      return sqlite3_changes(c.db()) == 1 ? StoreStatus::ok : StoreStatus::not_found;
    });
  }

  void migrate(Connection& c) {
    c.exec("BEGIN IMMEDIATE");
    try {
      c.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL DEFAULT (unixepoch()))");
      int current = 0;
      {
        Statement s(c.db(), "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
        if (s.step() == SQLITE_ROW) current = s.integer(0);
      }
      created_ = current == 0;
      const int latest = static_cast<int>(std::size(kMigrations));
      for (int v = current + 1; v <= latest; ++v) {
        c.exec(kMigrations[v - 1]);
        Statement s(c.db(), "INSERT INTO schema_migrations (version) VALUES (?1)");
        s.bind(1, v);
        check(c, s.step());
      }
      c.exec("COMMIT");
    } catch (...) {
      c.exec("ROLLBACK");
      throw;
    }
  }

  std::unique_ptr<Connection> acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!pool_.empty()) {
        auto c = std::move(pool_.back());
        pool_.pop_back();
        return c;
      }
    }
    return std::make_unique<Connection>(file_);
  }
  void release(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mutex_);
    if (pool_.size() < 16) pool_.push_back(std::move(c));
  }

  // What a cached user costs: its strings plus the list node, map node and control
  // block around them (an estimate on the high side).
  static std::size_t cost_of(const User& u) {
    std::size_t bytes = 2 * u.username.size() + u.hashed_password.size() + 256;
    if (u.email) bytes += u.email->size();
    if (u.full_name) bytes += u.full_name->size();
    for (const auto& sc : u.scopes) bytes += sc.size() + 32;
    return bytes;
  }
  using Version = std::array<std::uint32_t, 3>;
  struct Reader {
    std::unique_ptr<Connection> conn;
    std::unique_ptr<Statement> version_stmt;
    Version version{~0u, ~0u, ~0u};
    explicit Reader(std::size_t cache_bytes) : cache(cache_bytes) {}
    ByteBudgetLru<UserPtr> cache;
  };

  // What changes whenever any connection, in any process, commits. Every commit
  // appends frames to the WAL and rewrites the WAL-index header in the -shm file
  // (sqlite.org/walformat.html §2.1): mxFrame grows, and when the WAL restarts the
  // salts change. Reading (mxFrame, salt-1, salt-2) from a read-only mapping costs
  // no system call and no lock. Without a mapping, PRAGMA data_version tells the same.
  Version data_version(Reader& r) {
    if (wal_header_ != nullptr) {
      return Version{__atomic_load_n(wal_header_ + 4, __ATOMIC_ACQUIRE),   // mxFrame
                     __atomic_load_n(wal_header_ + 8, __ATOMIC_ACQUIRE),   // aSalt[0]
                     __atomic_load_n(wal_header_ + 9, __ATOMIC_ACQUIRE)};  // aSalt[1]
    }
    r.version_stmt->step();
    const auto v = static_cast<std::uint64_t>(r.version_stmt->integer64(0));
    r.version_stmt->reset();
    return Version{static_cast<std::uint32_t>(v), static_cast<std::uint32_t>(v >> 32), 0};
  }

  void map_wal_index() {
    const auto shm = file_.string() + "-shm";
    // Kept open until the store closes, for the same reason as db_fd_.
    shm_fd_ = ::open(shm.c_str(), O_RDONLY | O_CLOEXEC);
    if (shm_fd_ < 0) return;
    struct stat st {};
    if (::fstat(shm_fd_, &st) == 0 && st.st_size >= 136) {
      void* p = ::mmap(nullptr, 136, PROT_READ, MAP_SHARED, shm_fd_, 0);
      if (p != MAP_FAILED) {
        wal_map_ = p;
        wal_header_ = static_cast<const std::uint32_t*>(p);  // the first header copy
      }
    }
  }

  // The calling thread's reader for this store, made on first use.
  Reader& reader() {
    thread_local std::unordered_map<std::uint64_t, Reader*> mine;
    if (auto it = mine.find(id_); it != mine.end()) return *it->second;
    auto r = std::make_unique<Reader>(cache_bytes_);
    r->conn = std::make_unique<Connection>(file_);
    r->version_stmt = std::make_unique<Statement>(r->conn->db(), "PRAGMA data_version");
    Reader* raw = r.get();
    {
      std::lock_guard lock(mutex_);
      readers_.push_back(std::move(r));
    }
    mine.emplace(id_, raw);
    return *raw;
  }

  static std::uint64_t next_id() {
    static std::atomic<std::uint64_t> n{1};
    return n.fetch_add(1);
  }

  std::filesystem::path file_;
  const std::size_t cache_bytes_;
  const std::uint64_t id_ = next_id();  // never reused, so a dead store's readers are never found
  std::vector<std::unique_ptr<Reader>> readers_;
  std::unique_ptr<Connection> anchor_;
  void* wal_map_ = nullptr;
  int db_fd_ = -1;
  int shm_fd_ = -1;
  const std::uint32_t* wal_header_ = nullptr;
  bool created_ = false;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> pool_;
};

}  // namespace

std::unique_ptr<UserStore> open_sqlite_store(const std::filesystem::path& file,
                                             const SqliteOptions& options) {
  return std::make_unique<SqliteStore>(file, options);
}

std::vector<User> demo_users() {
  return {
      User{"johndoe", "johndoe@example.com", "John Doe", false,
           "$2b$12$h93UtAq4.OvsQYxEl8vsAeF7d4wVrgIFCdzcA842pX0hYxsStodHq"},
      User{"alice", "alice@example.com", "Alice Wonderson", true,
           "$2b$12$cPRekB3/i.lDE1jCBsT1s.9aigjzvk9XmvxL6jlhyYLjGPUEFzuWm"},
  };
}

}  // namespace gatehouse
