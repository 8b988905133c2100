// SPDX-License-Identifier: MIT
// pcpu/debug/occupancy_svg.hpp - an SVG picture of every chunk: which 4-byte units are
// allocated, free or hidden, and which pages are populated.
//
// One band per chunk (reserved chunk first, then the slot lists in order, as
// for_each_chunk()); each page is a cell of page_bits bits laid out in rows of
// `bits_per_row` bits, so one picture shows the whole allocator at bit resolution:
//
//   dark blue   allocated              light green  free, page populated
//   grey        hidden (static/reserved area, or outside this chunk's range)
//   light grey  page not populated (free, no backing memory)
//
// Allocated space is drawn run by run (at most three rectangles per run per page), so
// the file stays small when allocations are packed. No heap: every element is formatted
// into a stack buffer and handed to a sink, any callable taking (const char*, size_t);
// write_occupancy_svg_file() writes to a FILE*. Hosted only (snprintf).
#pragma once

#include "../allocator.hpp"
#include "../internal/bitmap.hpp"

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace pcpu::debug {

/// occupancy_svg_options - layout of the picture.
struct occupancy_svg_options {
    unsigned bits_per_row = 64;   ///< bits per row of a page cell (a divisor of page_bits)
    unsigned pages_per_row = 16;  ///< page cells per row of a chunk band
    unsigned scale = 1;           ///< pixels per bit
    const char* title = nullptr;  ///< printed above the chunks when non-null
};

namespace detail_svg {

template <class Sink>
void printf_to(Sink& sink, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

template <class Sink>
void printf_to(Sink& sink, const char* fmt, ...) noexcept {
    char buf[320];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) sink(static_cast<const char*>(buf), static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1);
}

inline const char* kind_name(chunk_kind k) noexcept {
    switch (k) {
    case chunk_kind::first: return "first";
    case chunk_kind::reserved: return "reserved";
    case chunk_kind::dynamic: return "dynamic";
    }
    return "?";
}

} // namespace detail_svg

/// write_occupancy_svg(a, sink, opt) - write the picture of allocator a to sink.
/// Context: takes a's index lock (through for_each_chunk_map) for the whole walk, and
/// the sink runs under it: the sink must not call back into a.
template <class Alloc, class Sink>
void write_occupancy_svg(const Alloc& a, Sink&& sink, const occupancy_svg_options& opt = {}) noexcept {
    using chunk_type = typename Alloc::chunk_type;
    constexpr std::uint32_t bb = chunk_type::page_bits;
    const unsigned cols = opt.bits_per_row != 0 && bb % opt.bits_per_row == 0 ? opt.bits_per_row : 64;
    const unsigned rows = bb / cols;
    const unsigned gap = 2, label_h = 14, s = opt.scale != 0 ? opt.scale : 1;
    const unsigned ppr = opt.pages_per_row != 0 ? opt.pages_per_row : 16;

    // First pass: the height every band needs.
    unsigned height = opt.title != nullptr ? 20 : 0;
    unsigned width_pages = 0;
    a.for_each_chunk_map([&](const chunk_stats& st, const chunk_type&) {
        const unsigned bands = (st.nr_pages + ppr - 1) / ppr;
        height += label_h + bands * (rows * s + gap) + 6;
        if (st.nr_pages > width_pages) width_pages = st.nr_pages < ppr ? st.nr_pages : ppr;
    });
    const unsigned width = width_pages * (cols * s + gap) + 4;
    height += 22; // legend

    detail_svg::printf_to(sink,
                          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
                          "font-family=\"monospace\" font-size=\"11\">\n",
                          width < 560 ? 560 : width, height);
    detail_svg::printf_to(sink, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    unsigned y = 2;
    if (opt.title != nullptr) {
        detail_svg::printf_to(sink, "<text x=\"2\" y=\"%u\" font-size=\"13\">%s</text>\n", y + 12, opt.title);
        y += 20;
    }

    unsigned index = 0;
    a.for_each_chunk_map([&](const chunk_stats& st, const chunk_type& map) {
        detail_svg::printf_to(sink,
                              "<text x=\"2\" y=\"%u\">chunk %u (%s, slot %d): %u/%u pages populated, "
                              "%u empty; %zu bytes free per unit, %u allocations</text>\n",
                              y + 11, index++, detail_svg::kind_name(st.kind), st.slot, st.nr_populated,
                              st.nr_pages, st.nr_empty_pop_pages, st.free_bytes, st.nr_alloc);
        y += label_h;
        const std::uint32_t hb = map.usable_begin(), he = map.usable_end();
        for (std::uint32_t p = 0; p < map.nr_pages(); ++p) {
            const unsigned x0 = 2 + (p % ppr) * (cols * s + gap);
            const unsigned y0 = y + (p / ppr) * (rows * s + gap);
            const bool pop = map.is_populated(p);
            detail_svg::printf_to(sink, "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"%s\"/>\n", x0, y0,
                                  cols * s, rows * s, pop ? "#cdeccf" : "#e6e6e6");
            // One run [b, e) of set bits, page relative, in at most three rectangles:
            // the partial first row, the whole rows, the partial last row.
            auto draw = [&](std::uint32_t b, std::uint32_t e, const char* color) {
                while (b < e) {
                    const std::uint32_t r = b / cols, c = b % cols;
                    std::uint32_t n_rows = 1, w = cols - c;
                    if (c == 0 && e - b >= cols) {
                        n_rows = (e - b) / cols;
                        w = cols;
                    } else if (e - b < w) {
                        w = e - b;
                    }
                    detail_svg::printf_to(sink,
                                          "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"%s\"/>\n",
                                          x0 + c * s, y0 + r * s, w * s, n_rows * s, color);
                    b += c == 0 && n_rows > 1 ? n_rows * cols : w;
                }
            };
            const std::uint32_t base = p * bb;
            std::size_t rs = 0, re = 0;
            for (std::size_t from = base; bitmap::next_set_region(map.alloc_map(), base + bb, from, rs, re);
                 from = re) {
                // Split the run into its hidden and its allocated parts.
                std::uint32_t b = static_cast<std::uint32_t>(rs), e = static_cast<std::uint32_t>(re);
                if (b < hb) {
                    const std::uint32_t m = e < hb ? e : hb;
                    draw(b - base, m - base, "#9a9a9a");
                    b = m;
                }
                const std::uint32_t ae = e < he ? e : (b < he ? he : b);
                if (b < ae) draw(b - base, ae - base, "#1f4e79");
                if (ae < e) draw((ae > b ? ae : b) - base, e - base, "#9a9a9a");
            }
        }
        y += ((map.nr_pages() + ppr - 1) / ppr) * (rows * s + gap) + 6;
    });

    // Legend.
    const char* names[] = {"allocated", "free (populated)", "unpopulated", "hidden"};
    const char* colors[] = {"#1f4e79", "#cdeccf", "#e6e6e6", "#9a9a9a"};
    for (unsigned i = 0; i < 4; ++i) {
        detail_svg::printf_to(sink, "<rect x=\"%u\" y=\"%u\" width=\"12\" height=\"12\" fill=\"%s\" stroke=\"#555\"/>",
                              2 + i * 140, y + 4, colors[i]);
        detail_svg::printf_to(sink, "<text x=\"%u\" y=\"%u\">%s</text>\n", 18 + i * 140, y + 14, names[i]);
    }
    detail_svg::printf_to(sink, "</svg>\n");
}

/// write_occupancy_svg_file(a, f, opt) - the same, to a C stream. Returns false on a
/// write error.
template <class Alloc>
bool write_occupancy_svg_file(const Alloc& a, std::FILE* f, const occupancy_svg_options& opt = {}) noexcept {
    bool ok = true;
    write_occupancy_svg(
        a, [f, &ok](const char* p, std::size_t n) { ok &= std::fwrite(p, 1, n, f) == n; }, opt);
    return ok;
}

} // namespace pcpu::debug
