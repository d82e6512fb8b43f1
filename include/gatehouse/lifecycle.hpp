// The token lifecycle: refresh tokens with rotation and reuse detection, and revocation
// (RFC 7009) with a deny-list of access tokens kept in memory and current from the store.
//
// Refresh tokens are 256-bit random strings (base64url, 43 characters); the store keeps
// only their SHA-256. Each rotation spends the presented token and stores its successor
// in one transaction. The successor of a token is HMAC-SHA256(refresh key, token): a
// second presentation within the grace period gets the very same successor (two tabs
// refreshing at once stay logged in, and two instances racing issue one successor);
// a presentation after it revokes the whole family.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/poller.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/verifier.hpp"

namespace gatehouse {

// A stored refresh token (never the token itself: its hash).
struct RefreshTokenRecord {
  std::string hash;    // hex SHA-256 of the token
  std::string family;  // the login it descends from (hex, random)
  std::string username;
  std::string scope;                   // space-separated
  std::int64_t expires_at = 0;         // idle expiry: issued + idle lifetime
  std::int64_t family_expires_at = 0;  // absolute expiry of the login
  bool spent = false;                  // rotated already
};

enum class RotateStatus {
  rotated,   // spent now; the successor is stored
  replayed,  // spent within the grace period; the successor given then is still valid
  reused,    // spent before the grace period: the family is revoked
  unknown,   // no such token (never issued, revoked, expired or pruned)
};

// What the lifecycle needs from a store. The SQLite and PostgreSQL stores implement it
// (std::dynamic_pointer_cast<TokenStore>(store)).
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  virtual void add_refresh_token(const RefreshTokenRecord& record) = 0;
  // The token (spent or not) while neither expired at `now` nor revoked.
  [[nodiscard]] virtual std::optional<RefreshTokenRecord> find_refresh_token(std::string_view hash,
                                                                             std::int64_t now) = 0;
  // One transaction: if `hash` is unspent and unexpired, marks it spent at `now` and
  // stores `successor_hash` in its family (scope `scope`, idle expiry now + idle_seconds
  // capped by the family's absolute expiry): rotated. When it was spent less than
  // grace_seconds ago (0: never) and its successor is `successor_hash` and unspent:
  // replayed. Spent longer ago: its family is deleted (reused). Whatever races, a token
  // is spent once. `successor` receives the successor's record (rotated, replayed).
  virtual RotateStatus rotate_refresh_token(std::string_view hash, std::string_view successor_hash,
                                            std::string_view scope, std::int64_t now,
                                            std::int64_t idle_seconds, std::int64_t grace_seconds,
                                            RefreshTokenRecord& successor) = 0;
  // Deletes every token of the family; false when there was none.
  virtual bool revoke_refresh_family(std::string_view family) = 0;

  struct RotateRequest {
    std::string hash;            // of the presented token
    std::string successor_hash;  // of its successor
    std::string scope;           // the successor's
  };
  struct RotateOutcome {
    RotateStatus status = RotateStatus::unknown;
    RefreshTokenRecord successor;  // rotated, replayed
    std::exception_ptr error;      // set: this rotation failed and left no trace
  };
  // Several rotations, each exactly as rotate_refresh_token would do it, in order (a
  // later one sees an earlier one's result). A store that can puts them in one
  // transaction with one commit, so one disk flush serves them all (group commit; see
  // batches_rotations). One that fails alone gets its error; the others stand. Throws
  // when the batch as a whole could not be committed: then none happened.
  [[nodiscard]] virtual std::vector<RotateOutcome> rotate_refresh_tokens(
      const std::vector<RotateRequest>& batch, std::int64_t now, std::int64_t idle_seconds,
      std::int64_t grace_seconds);
  // True when rotate_refresh_tokens commits a batch at once (worth gathering one);
  // false: it runs them one transaction each, and concurrent callers do better.
  [[nodiscard]] virtual bool batches_rotations() const { return false; }

  struct DeniedToken {
    std::int64_t seq = 0;  // increasing with each denial
    std::string key;       // hex SHA-256 of the token's signed part
    std::int64_t expires_at = 0;
  };
  // Puts an access token on the deny-list until `expires_at` (idempotent).
  virtual void deny_access_token(std::string_view key, std::int64_t expires_at) = 0;
  // Denials with seq > `after`, unexpired at `now`, in seq order.
  [[nodiscard]] virtual std::vector<DeniedToken> denied_since(std::int64_t after,
                                                              std::int64_t now) = 0;
  // Removes expired denials and refresh tokens.
  virtual void prune_tokens(std::int64_t now) = 0;
};

// Access tokens revoked before they expire, checked in memory on every verification
// (an atomic load when the list is empty, otherwise one SHA-256 of the signature and a
// hash lookup under a shared lock) and kept current from the store.
//
// On a store with a ChangeFeed (PostgreSQL with its watcher) every denial, made by any
// process, is announced in the transaction that stores it and added here when the
// notification arrives (well under a second); when the listening connection comes back
// after a loss, the whole list is read again, so nothing denied meanwhile is missed.
// A slow poll (every 30 s) stays as a safety net for denials written without a
// notification (an older gatehouse during a rolling upgrade, SQL by hand). On another
// store (SQLite) a background thread reads the denials it has not seen yet at every
// interval.
//
// A DenyList is a RevocationList: set it as VerifierOptions::revocations and every
// dependency built on that verifier (bearer_claims, current_user) refuses revoked tokens.
class DenyList final : public RevocationList {
 public:
  explicit DenyList(std::shared_ptr<TokenStore> store, std::function<std::int64_t()> clock = {});
  ~DenyList() override;
  DenyList(const DenyList&) = delete;
  DenyList& operator=(const DenyList&) = delete;

  // The deny-list key of a verified token: hex SHA-256 of its signed part
  // (header.payload as received; see VerifiedToken::signing_input)
  // (the same whatever base64 spelling the token arrived in).
  [[nodiscard]] static std::string key(const VerifiedToken& token);

  [[nodiscard]] bool denied(const VerifiedToken& token) const;
  [[nodiscard]] bool revoked(const VerifiedToken& token) const override { return denied(token); }
  // Stores the denial, and applies it here at once.
  void deny(const VerifiedToken& token);
  // Reads new denials from the store and forgets expired ones.
  void sync();
  // Subscribes to the store's ChangeFeed if it has one, reads the whole list, then
  // works on a thread of its own until destroyed: every `interval` it calls sync() (no
  // feed), or (a feed) reads the whole list again after a reconnection of the feed, and
  // calls sync() every kSafetyPoll only.
  void start(std::chrono::milliseconds interval);
  // Whether denials arrive through a ChangeFeed (else they are polled).
  [[nodiscard]] bool pushed() const noexcept { return feed_ != nullptr; }
  static constexpr std::int64_t kSafetyPollSeconds = 30;

 private:
  void apply(const std::string& raw_key, std::int64_t expires_at);
  void receive(std::string_view payload);  // "<hex key> <expires_at>" from the feed
  void round();                            // one round of the background thread

  std::shared_ptr<TokenStore> store_;
  std::function<std::int64_t()> clock_;
  mutable std::shared_mutex mutex_;
  // raw SHA-256 -> exp; looked up by a string_view (no key string built per check)
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const noexcept {
      return std::hash<std::string_view>{}(k);
    }
  };
  std::unordered_map<std::string, std::int64_t, KeyHash, std::equal_to<>> denied_;
  std::atomic<bool> empty_{true};
  std::int64_t seen_ = 0;
  std::int64_t last_prune_ = 0;
  std::int64_t last_sync_ = 0;
  std::mutex sync_mutex_;
  ChangeFeed* feed_ = nullptr;  // part of store_, which outlives this
  std::uint64_t subscription_ = 0;
  std::atomic<bool> resync_{false};  // the feed reconnected: read the whole list
  Poller poller_;                    // last: stopped before the rest goes
};

struct RefreshTokenOptions {
  std::int64_t idle_seconds = 14 * 24 * 3600;      // unused this long: expired
  std::int64_t absolute_seconds = 90 * 24 * 3600;  // after the login: expired
  std::int64_t grace_seconds = 5;                  // a spent token may be replayed for this long
  std::function<std::int64_t()> clock;             // default: the system clock
};

// Issues and rotates refresh tokens on a TokenStore.
class RefreshTokens {
 public:
  // `key`: the secret successors are derived with (32 random bytes, shared by instances).
  RefreshTokens(std::shared_ptr<TokenStore> store, std::string key, RefreshTokenOptions options);

  // A new token starting a new family.
  [[nodiscard]] std::string issue(const std::string& username, const std::string& scope) const;

  struct Rotation {
    RotateStatus status = RotateStatus::unknown;
    std::string token;          // the successor (rotated, replayed)
    RefreshTokenRecord record;  // the successor's record (rotated, replayed)
  };
  // Rotates `token`, giving its successor scope `scope` (already checked by the caller
  // against find()).
  [[nodiscard]] Rotation rotate(std::string_view token, const std::string& scope) const;
  // The same, answered through `done`, called exactly once: with the rotation, or with
  // the store's error (and an unknown rotation). On a store that batches rotations
  // (SQLite), a committer thread gathers the rotations that arrive while it commits
  // and commits them together: `done` runs on that thread, after the commit, so an
  // answer is never sent for a rotation that is not durable. On another store it
  // rotates here and calls `done` before returning.
  using RotationDone = std::function<void(Rotation, std::exception_ptr)>;
  void rotate_later(std::string_view token, const std::string& scope, RotationDone done) const;
  // True when rotate_later hands rotations to the committer (the store batches them):
  // then a refresh needs no worker thread of its own.
  [[nodiscard]] bool commits_in_batches() const noexcept { return committer_ != nullptr; }
  [[nodiscard]] std::optional<RefreshTokenRecord> find(std::string_view token) const;
  // Revokes the family of `token`; false when it names none.
  bool revoke(std::string_view token) const;

  [[nodiscard]] static std::string hash(std::string_view token);
  [[nodiscard]] const RefreshTokenOptions& options() const noexcept { return options_; }

 private:
  class Committer;
  [[nodiscard]] std::string successor_of(std::string_view token) const;

  std::shared_ptr<TokenStore> store_;
  std::string key_;
  RefreshTokenOptions options_;
  std::shared_ptr<Committer> committer_;  // when the store batches rotations
};

// The form of a token request (RFC 6749 §4.3.2 and §6): grant_type, username,
// password, refresh_token, scope, client_id, client_secret, declared in OpenAPI as an
// application/x-www-form-urlencoded body. Empty values count as absent.
struct TokenRequest {
  std::optional<std::string> grant_type;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::optional<std::string> refresh_token;
  std::optional<std::vector<std::string>> scopes;  // `scope` split on whitespace
  std::optional<std::string> client_id;
  std::optional<std::string> client_secret;

  static Dependency<TokenRequest> dependency();
};

// A random secret for RefreshTokens (32 bytes from the CSPRNG, base64url).
std::string generate_refresh_key();

class ClientRegistry;

// POST /revoke (RFC 7009): form fields `token` and `token_type_hint`. A refresh token
// revokes its family; an access token that `verifier` accepts goes on `deny_list`.
// Unknown tokens get 200 too. Without registered clients (`clients` null), the token is
// its own proof: whoever holds it may revoke it. With them (RFC 7009 §2.1), a client
// that presents credentials must authenticate (else 401 invalid_client) and may revoke
// only the tokens issued to it (a token of another client, or of no client, is refused:
// 400 unauthorized_client, and stays valid); a token issued to a client (its
// `client_id` claim) cannot be revoked without that client's credentials (401
// invalid_client); a token issued to no client (a password login of a public client)
// may still be revoked by its holder without credentials.
Route& install_revoke(App& app, std::shared_ptr<const Verifier> verifier,
                      std::shared_ptr<DenyList> deny_list, std::shared_ptr<RefreshTokens> refresh,
                      std::shared_ptr<const ClientRegistry> clients = nullptr);

// An RFC 6749 §5.2 error response: 400 {"error", "error_description"}, no-store.
Response oauth_error(std::string_view error, std::string_view description);

}  // namespace gatehouse
