// A small value-or-error type. g++ 12 has no std::expected, so gatehouse uses this
// wherever a failure is an ordinary outcome (a bad token, a wrong password, a
// validation error) rather than a bug. Hot paths return it instead of throwing.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace gatehouse {

// Wraps an error so that Result<T, E> can be built from it even when T and E
// could convert to each other.
template <class E>
struct Err {
  E error;
};
template <class E>
Err(E) -> Err<E>;

template <class T, class E>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  template <class U = T, std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                              !std::is_same_v<std::remove_cvref_t<U>, Result> &&
                                              !std::is_constructible_v<E, U&&>,
                                          int> = 0>
  Result(U&& value)
      : v_(std::in_place_index<0>, std::forward<U>(value)) {
  }  // NOLINT(google-explicit-constructor)

  template <class G = E, std::enable_if_t<std::is_constructible_v<E, G&&> &&
                                              !std::is_same_v<std::remove_cvref_t<G>, Result> &&
                                              !std::is_constructible_v<T, G&&>,
                                          int> = 0>
  Result(G&& error)
      : v_(std::in_place_index<1>, std::forward<G>(error)) {
  }  // NOLINT(google-explicit-constructor)

  template <class G>
  Result(Err<G> e)
      : v_(std::in_place_index<1>, std::move(e.error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  E& error() & {
    assert(!ok());
    return std::get<1>(v_);
  }
  const E& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  E&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, E> v_;
};

}  // namespace gatehouse
