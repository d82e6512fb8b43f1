// Dependencies and security requirements, after FastAPI's Depends/Security: one
// include for the three parts, each of which can be included alone.
//   dependency.hpp  the dependency engine: Dependency<T>, Depends/Security edges, the
//                   per-route Binding and RequestContext, dependency(), ClientAddress
//   scopes.hpp      SecurityScopes and split_scopes
//   oauth2.hpp      OAuth2PasswordBearer and OAuth2PasswordRequestForm
// (form.hpp, the parsed form body, comes with dependency.hpp.)
#pragma once

#include "gatehouse/dependency.hpp"
#include "gatehouse/form.hpp"
#include "gatehouse/oauth2.hpp"
#include "gatehouse/scopes.hpp"
