// A least-recently-used map from strings to values, bounded in bytes rather than in
// entries: every entry declares what it costs, and the oldest entries go until the
// total fits the budget. An entry costing more than an eighth of the budget is not
// kept at all, so one huge entry never flushes everything else. Not thread-safe: each
// owner (a thread's user cache, a throttle shard under its mutex) has its own.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace gatehouse {

template <class V>
class ByteBudgetLru {
 public:
  explicit ByteBudgetLru(std::size_t budget_bytes) : budget_(budget_bytes) {}

  // The value under `key`, now the most recently used; nullptr if absent.
  V* get(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->value;
  }

  // Inserts or replaces `key`. Returns false (and keeps nothing) when the entry alone
  // would take more than an eighth of the budget.
  bool put(std::string_view key, V value, std::size_t cost) {
    erase(key);
    if (budget_ == 0 || cost > budget_ / 8) return false;
    order_.push_front(Node{std::string(key), std::move(value), cost});
    index_.emplace(order_.front().key, order_.begin());
    used_ += cost;
    while (used_ > budget_ && !order_.empty()) erase(order_.back().key);
    return true;
  }

  void erase(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    auto node = it->second;
    used_ -= node->cost;
    index_.erase(it);
    order_.erase(node);
  }

  void clear() {
    index_ = {};  // a fresh table: clear() would keep the bucket array's size
    order_.clear();
    used_ = 0;
  }

  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  [[nodiscard]] std::size_t used_bytes() const noexcept { return used_; }
  [[nodiscard]] std::size_t budget_bytes() const noexcept { return budget_; }

  // Calls fn(key, value) from the least recently used entry on; fn returns true to
  // erase the entry. Stops at the first entry fn keeps when `stop_at_kept` is set.
  template <class F>
  void sweep_oldest(F&& fn, bool stop_at_kept) {
    for (auto it = order_.end(); it != order_.begin();) {
      --it;
      if (fn(it->key, it->value)) {
        auto victim = it++;
        erase(victim->key);
      } else if (stop_at_kept) {
        return;
      }
    }
  }

 private:
  struct Node {
    std::string key;
    V value;
    std::size_t cost;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using List = std::list<Node>;

  std::size_t budget_;
  std::size_t used_ = 0;
  List order_;
  // Keys are views of the list nodes' own strings (list nodes never move).
  std::unordered_map<std::string_view, typename List::iterator, Hash, std::equal_to<>> index_;
};

}  // namespace gatehouse
