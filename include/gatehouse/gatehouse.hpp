// Everything a gatehouse application needs, in one include.
#pragma once

#include "gatehouse/app.hpp"
#include "gatehouse/auth.hpp"
#include "gatehouse/clients.hpp"
#include "gatehouse/http.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/keys.hpp"
#include "gatehouse/lifecycle.hpp"
#include "gatehouse/model.hpp"
#include "gatehouse/password.hpp"
#include "gatehouse/result.hpp"
#include "gatehouse/security.hpp"
#include "gatehouse/server.hpp"
#include "gatehouse/store.hpp"
#include "gatehouse/throttle.hpp"
#include "gatehouse/verifier.hpp"
#include "gatehouse/wellknown.hpp"
