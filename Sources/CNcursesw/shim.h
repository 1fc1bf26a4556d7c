#ifndef CNCURSESW_SHIM_H
#define CNCURSESW_SHIM_H
/* SwiftPM drops pkg-config's -D_XOPEN_SOURCE=600, which is what turns on the
   wide-character API in curses.h (see shared/design/swift-notes.md 1.3). */
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>
#include <ncursesw/term.h>

/* Whether TERM names a terminal ncurses knows, for fd 1, without taking the screen (newterm
   would): setupterm with an error pointer returns instead of exiting, and the entry it loaded
   is freed again. */
static inline int tui_terminal_known(void) {
    int error = 0;
    if (setupterm(NULL, 1, &error) != OK) return 0;
    del_curterm(cur_term);
    return 1;
}

/* Swift 6 rejects the C globals (shared mutable state); accessors import cleanly. */
static inline WINDOW *tui_stdscr(void)      { return stdscr; }
static inline int     tui_colors(void)      { return COLORS; }
static inline int     tui_color_pairs(void) { return COLOR_PAIRS; }
/* NCURSES_BITS macros are not imported into Swift. */
static inline attr_t  tui_a_normal(void)    { return A_NORMAL; }
static inline attr_t  tui_a_bold(void)      { return A_BOLD; }
static inline attr_t  tui_a_dim(void)       { return A_DIM; }
static inline attr_t  tui_a_reverse(void)   { return A_REVERSE; }
static inline attr_t  tui_a_underline(void) { return A_UNDERLINE; }
static inline mmask_t tui_all_mouse_events(void) { return ALL_MOUSE_EVENTS | REPORT_MOUSE_POSITION; }
static inline mmask_t tui_button1_pressed(void)  { return BUTTON1_PRESSED; }
static inline mmask_t tui_button1_clicked(void)  { return BUTTON1_CLICKED; }
static inline mmask_t tui_button4_pressed(void)  { return BUTTON4_PRESSED; }
static inline mmask_t tui_button5_pressed(void)  { return BUTTON5_PRESSED; }

/* One wide cell with attributes and an extended colour pair (pairs > 255 work). */
static inline int tui_put_wch(WINDOW *w, int y, int x, wchar_t ch, attr_t attr, int pair) {
    cchar_t cc;
    wchar_t s[2] = { ch, 0 };
    setcchar(&cc, s, attr, 0, &pair);
    return mvwadd_wch(w, y, x, &cc);
}
#endif
