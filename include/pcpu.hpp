// SPDX-License-Identifier: MIT
// pcpu.hpp - the public set of pcpu headers.
#pragma once

#include "pcpu/allocator.hpp"
#include "pcpu/context.hpp"
#include "pcpu/ctx_type.hpp"
#include "pcpu/error.hpp"
#include "pcpu/counter.hpp"
#include "pcpu/percpu.hpp"
#include "pcpu/static_var.hpp"
#include "pcpu/version.hpp"
