// Where users live. One interface; SQLite is the embedded default.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/blocking.hpp"
#include "gatehouse/keys.hpp"

namespace gatehouse {

struct User {
  std::string username;
  std::optional<std::string> email;
  std::optional<std::string> full_name;
  bool disabled = false;
  std::string hashed_password;
  // The scopes a token for this user may carry. Empty: whatever is asked for, as in
  // FastAPI's tutorial; otherwise /token grants only the requested scopes listed here.
  std::vector<std::string> scopes;
};
using UserPtr = std::shared_ptr<const User>;

enum class StoreStatus { ok, exists, not_found };

// Thrown by a store that cannot answer now: its database does not answer, or not within
// the store's time limit. App::run answers it with a JSON 503 and `Retry-After`, as for
// an overloaded service, never a 500: the request may be tried again shortly.
class StoreUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by a store asked, on a thread that must not block (one of the server's I/O
// threads, see BlockingForbidden in blocking.hpp), for something that needs a round
// trip to its database: the HTTP layer's WouldBlock under the store's name.
using StoreWouldBlock = WouldBlock;

// A store's state as it knows it without a round trip (for /readyz).
struct StoreHealth {
  bool ok = true;
  std::string detail;
};

class UserStore {
 public:
  virtual ~UserStore() = default;
  // The user, or nullptr. Safe to call from any thread. Throws std::runtime_error when
  // the store cannot answer (a route then answers 500).
  [[nodiscard]] virtual UserPtr find(std::string_view username) = 0;
  virtual StoreStatus add(const User& user) = 0;
  virtual StoreStatus set_disabled(std::string_view username, bool disabled) = 0;
  virtual StoreStatus set_password_hash(std::string_view username, std::string_view hash) = 0;
  // Sets the hash only if it is still `old_hash` (a rehash after login must not undo
  // a password change made meanwhile elsewhere); not_found otherwise.
  virtual StoreStatus replace_password_hash(std::string_view username, std::string_view old_hash,
                                            std::string_view new_hash) = 0;
  virtual StoreStatus remove(std::string_view username) = 0;
  [[nodiscard]] virtual std::vector<User> list() = 0;
  // Up to `limit` users whose names sort after `after` ("" = from the first), in name
  // order: a large store read a page at a time, in bounded memory. The default filters
  // list(); the stores answer it with one indexed query.
  [[nodiscard]] virtual std::vector<User> list_page(std::string_view after, std::size_t limit) {
    std::vector<User> page;
    for (auto& u : list()) {
      if (page.size() >= limit) break;
      if (after.empty() || u.username > after) page.push_back(std::move(u));
    }
    return page;
  }
  // True when the store holds at least one user (without reading them all).
  [[nodiscard]] virtual bool has_users() { return !list().empty(); }
  // A value kept in the store (key material, settings); nullopt when unset.
  [[nodiscard]] virtual std::optional<std::string> setting(std::string_view name) = 0;
  virtual void set_setting(std::string_view name, std::string_view value) = 0;
  // The setting's value, storing `value` first if it has none; when several processes
  // race, they all get the one value that was stored first.
  virtual std::string setting_or_init(std::string_view name, std::string_view value) = 0;
  // Compare-and-set: stores `value` only if the setting still holds `expected` (nullopt:
  // only if it is unset), atomically across processes; false when another writer got
  // there first (read it again and retry).
  virtual bool replace_setting(std::string_view name, std::optional<std::string_view> expected,
                               std::string_view value) = 0;
  // Signing keys (see keys.hpp), oldest first (by creation, then supersession).
  [[nodiscard]] virtual std::vector<StoredKey> signing_keys() = 0;
  // Stores `key` as the signing key and marks the current one superseded at
  // key.created_at, in one transaction. With `expected_current` set, only if the
  // current key is still that kid ("" = there is none); false when it was not (another
  // process rotated first). At most one key is current, whatever races.
  virtual bool rotate_signing_key(const StoredKey& key,
                                  std::optional<std::string_view> expected_current) = 0;
  // Marks a key retired at `at` (it verifies nothing from then on); not_found when
  // there is no such key or it is retired already.
  virtual StoreStatus retire_signing_key(std::string_view kid, std::int64_t at) = 0;
  // A value that changes whenever anything is committed to the store, by any process,
  // cheap enough to read on every request; nullopt when the store cannot tell.
  [[nodiscard]] virtual std::optional<std::uint64_t> change_marker() { return std::nullopt; }
  // True when the store was created by this open (no schema existed before).
  [[nodiscard]] virtual bool created() const = 0;
  // Whether the store can answer, from what it already knows (no round trip; safe on an
  // I/O thread); nullopt when it cannot tell without asking its database.
  [[nodiscard]] virtual std::optional<StoreHealth> health() const { return std::nullopt; }
};

// Messages between the processes that share one store, as they commit: PostgreSQL's
// LISTEN/NOTIFY, on the connection the store's watcher keeps (PostgresOptions::watch).
// The deny-list and the login throttle use it to stay current without a round trip per
// request. Find it with dynamic_cast; available() says whether this store has a watcher.
class ChangeFeed {
 public:
  // The channels a feed carries (the watcher LISTENs on these and gatehouse_users).
  static constexpr std::string_view kRevocations = "gatehouse_revoked";  // "<hex key> <exp>"
  static constexpr std::string_view kThrottle = "gatehouse_throttle";    // ThrottleRelay's
  // A payload is at most this many bytes (PostgreSQL's limit is 7999).
  static constexpr std::size_t kMaxPayload = 7900;

  using Handler = std::function<void(std::string_view payload)>;
  using Resync = std::function<void()>;
  virtual ~ChangeFeed() = default;
  // True when messages are delivered (the store keeps a listening connection).
  [[nodiscard]] virtual bool available() const = 0;
  // Calls `on_message` with each payload committed on `channel` (one of the above) by
  // any process, this one included, and `on_resync` each time the listening connection
  // is back after a loss, once it listens again: what was sent meanwhile never arrives,
  // so the subscriber reloads what it keeps from the store. Both run on the watcher
  // thread: they must be quick, must not make a round trip, and must not unsubscribe.
  // Returns the id unsubscribe() takes.
  virtual std::uint64_t subscribe(std::string_view channel, Handler on_message,
                                  Resync on_resync) = 0;
  // Neither function is called once this returns (it waits for a call under way).
  virtual void unsubscribe(std::uint64_t id) = 0;
  // Sends `payload` (at most kMaxPayload bytes) on `channel`: one round trip. Throws
  // StoreUnavailable when the database does not answer.
  virtual void publish(std::string_view channel, std::string_view payload) = 0;
};

struct SqliteOptions {
  // Each thread that looks users up keeps the users it found (never the names it did
  // not find) in a least-recently-used cache of at most this many bytes; 0: no cache.
  std::size_t user_cache_bytes = 256 * 1024;
};

// Opens (creating if needed, mode 0600) the SQLite database at `file` in WAL mode and
// applies pending schema migrations. Throws std::runtime_error when it cannot.
std::unique_ptr<UserStore> open_sqlite_store(const std::filesystem::path& file,
                                             const SqliteOptions& options = {});

struct PostgresOptions {
  // The time limit on every round trip: connecting (and logging in), each statement
  // (sent as the server's statement_timeout too, unless the URL sets one) and waiting
  // for a free pooled connection. A database that does not answer within it makes the
  // call throw StoreUnavailable.
  std::chrono::milliseconds timeout{5000};
  // Keep a connection that LISTENs for changes (the NOTIFYs every writer sends) and
  // watches the database: users are then cached in memory, at most this many bytes
  // (0: no cache), and while the database does not answer every call fails at once
  // with StoreUnavailable until the watcher reconnects. For long-running servers; a
  // one-shot command leaves it off.
  bool watch = false;
  std::size_t user_cache_bytes = 256 * 1024;
};

// Connects to PostgreSQL (`url` goes to libpq unchanged: postgresql://user@host/db?sslmode=...)
// and applies pending migrations under an advisory lock, so several instances may share
// one database. User writes NOTIFY gatehouse_users with the username. Throws
// std::runtime_error (never showing the password) when it cannot. A non-empty `password`
// (read from a password file) is used instead of one in the URL; without either, libpq
// looks at PGPASSWORD and PGPASSFILE (default ~/.pgpass) as usual.
std::unique_ptr<UserStore> open_postgres_store(const std::string& url,
                                               const std::string& password = {},
                                               const PostgresOptions& options = {});

// The URL (or keyword=value string) without its password, fit for messages and logs.
std::string redact_postgres_url(std::string_view url);

// Empty when libpq can parse `url` as a connection URL or keyword=value string;
// otherwise libpq's complaint, without the password.
std::string postgres_url_problem(const std::string& url);

// The tutorial's demo users: johndoe/secret (active) and alice/secret2 (disabled),
// with the exact passlib bcrypt hashes of FastAPI's tutorial reference.
std::vector<User> demo_users();

}  // namespace gatehouse
