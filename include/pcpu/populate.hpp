// SPDX-License-Identifier: MIT
// pcpu/populate.hpp - populate policies: where a chunk's memory comes from and when
// its pages become real (mm/percpu-vm.c, mm/percpu-km.c).
//
//   static_only  - the first chunk is all there is; never allocates, never blocks.
//   contiguous   - no MMU: a new chunk gets all its units at once from alloc_units();
//                  every page is populated from creation, population is bookkeeping.
//   lazy_mapped  - MMU: a new chunk reserves address space only; pages are allocated
//                  and mapped per CPU when an allocation first lands on them, and
//                  unmapped and freed again by balance when they fall empty.
//
// Each policy is a tag; `Policy::backend<Platform>` is its back end, a type holding
// the back end's state (the page array for lazy_mapped) with the members the core
// calls (pcpu/backend/). Each back end only moves memory; the allocator decides when,
// under which lock and with which context.
#pragma once

#include "backend/contiguous.hpp"
#include "backend/lazy_mapped.hpp"
#include "backend/static_only.hpp"
#include "backend/unit_layout.hpp"
