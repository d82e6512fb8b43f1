// BlockingForbidden: a per-thread flag (see gatehouse/blocking.hpp).
#include "gatehouse/blocking.hpp"

namespace gatehouse {

namespace {
thread_local bool blocking_forbidden = false;
}  // namespace

BlockingForbidden::BlockingForbidden() : previous_(blocking_forbidden) {
  blocking_forbidden = true;
}
BlockingForbidden::~BlockingForbidden() { blocking_forbidden = previous_; }
bool BlockingForbidden::active() noexcept { return blocking_forbidden; }

}  // namespace gatehouse
