; Lego Loco cluster test guest: a 512-byte x86 real-mode boot sector.
;
; Assemble:  nasm -f bin -o boot.bin boot.asm
; The assembled boot.bin ships beside this file; a test checks that nasm reproduces it
; byte for byte, so edit this file, re-assemble, and commit both.
;
; What it does
;   * Switches to VGA mode 13h (320x200x256, shown as 640x400 over QEMU's VNC).
;   * Reprograms PIT channel 0 to the divisor in the parameter block and hooks IRQ0.
;     The IRQ handler only counts ticks; every TICKS_PER_FRAME ticks it marks a frame
;     due.  The main loop sleeps in `hlt` and draws one frame per due mark, so the guest
;     costs a few percent of a host core instead of spinning.
;   * Every frame: increments a 16-bit frame counter and draws it as 16 blocks in a row
;     (block i = bit i, leftmost block = bit 0; white = set, black = clear) inside a blue
;     guard band, so a screenshot decodes to ground truth.  It also repaints a colour
;     band (colour = counter low byte) and moves a bar, so consecutive frames differ
;     elsewhere too and the screen is never one colour.
;   * Mode-switch flag set: every FRAMES_PER_MODE frames it flips between mode 13h and
;     text mode 3 (80x25, 720x400 over VNC), like Windows 98 does while booting.  Text mode
;     draws the same picture out of character cells at the same normalised positions.
;   * Disk-write flag set: every frame it writes one sector (this boot sector, unchanged
;     but for the disk address packet) through INT 13h extensions, 128 sectors further on
;     each time, so the first 16 frames allocate every 64 KiB cluster of the 1 MiB disk in
;     the instance's qcow2 overlay.  Tests use it to fill a small state filesystem.
;   * Serial control (COM1, polled on every timer tick): the byte 'f' freezes the picture
;     (no frame is drawn until told otherwise), 'g' makes it go on.  A reset clears it.
;     Without a serial port the reads return 0xFF, which is neither.
;
; Screen geometry (normalised to the picture, identical in both modes; decode.py relies
; on it):  guard band y 0.40-0.60, full width, blue.  Block i spans x (i+0.2)/16 ..
; (i+0.8)/16, y 0.44-0.56.  Colour band y 0-0.32, moving bar y 0.68-1.0.
;
; Parameter block (patched by build.py / params.py), sector offsets:
;   0x1F0  6 bytes  magic "LOCOTI"
;   0x1F6  u8       layout version (1)
;   0x1F7  u8       flags: bit 0 = mode switch, bit 1 = write to the disk
;   0x1F8  u16 LE   PIT channel 0 divisor (1..65535)
;   0x1FA  u8       timer ticks per frame (1..255; > 1 only below 18.2 frames/s)
;   0x1FB  u8       reserved (0)
;   0x1FC  u16 LE   frames per video mode when mode switching (1..65535)
;   0x1FE  55 AA    boot signature
; The defaults below give 30 frames/s without mode switching.

bits 16
org 0x7C00

; Variables live in free conventional memory below the sector, not in the sector, so
; the sector's bytes (and so boot.bin) never depend on run-time state.
absolute 0x0500
vars_start:
counter     resw 1      ; frames drawn so far (wraps at 65536)
mode_left   resw 1      ; frames until the next mode switch
desc        resw 1      ; descriptor of the current video mode
stride      resw 1      ; bytes per row/line of the current mode
tick_left   resb 1      ; timer ticks until the next frame is due (IRQ0 only)
frame_due   resb 1      ; set by IRQ0, cleared by the main loop
is_text     resb 1      ; 0 = mode 13h, 1 = text mode 3
frozen      resb 1      ; 1 after 'f' on COM1, 0 after 'g'
vars_end:

; Offsets inside a video mode descriptor.  A "rect" is {base offset, width in words,
; rows}; drawing always uses stosw so one fill routine serves both modes.
D_SEG       equ 0
D_STRIDE    equ 2
D_GUARD     equ 4           ; rect
D_GUARDV    equ 10
D_BLK       equ 12          ; rect of block 0
D_BLKSTEP   equ 18          ; bytes from one block to the next
D_WHITE     equ 20
D_BLACK     equ 22
D_BAND      equ 24          ; rect
D_BANDCHR   equ 30          ; text: character of the band; graphics: 0 = colour only
D_BAR       equ 32          ; rect at position 0
D_BARSTEP   equ 38          ; bytes per bar position (byte used)
D_BARV      equ 40
D_ERASE     equ 42

section .text

start:
    jmp 0x0000:init             ; some BIOSes enter at 07C0:0000; IVT entry needs CS = 0
init:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    cld
    mov di, vars_start          ; zero the variables (AL = 0)
    mov cx, vars_end - vars_start
    rep stosb
    inc byte [tick_left]        ; first frame on the first tick
    mov ax, [p_period]
    mov [mode_left], ax

    mov word [8*4], irq0        ; IVT entry 8 = IRQ0 (timer)
    mov [8*4+2], cs

    mov al, 0x34                ; PIT channel 0, lobyte/hibyte, mode 2 (rate generator)
    out 0x43, al
    mov ax, [p_divisor]
    out 0x40, al
    mov al, ah
    out 0x40, al

    call set_mode               ; is_text = 0 -> mode 13h

main:
    mov dx, 0x3FD               ; COM1 line status: bit 0 = a byte has arrived
    in al, dx
    test al, 1
    jz .due
    mov dl, 0xF8                ; DX = 0x3F8, COM1 data
    in al, dx
    sub al, 'f'                 ; 'f' -> 0, 'g' -> 1, anything else ignored
    cmp al, 1
    ja .due
    xor al, 1
    mov [frozen], al
.due:
    cli                         ; check-then-sleep without losing a tick in between:
    cmp byte [frame_due], 0
    jne .frame
    sti                         ; sti delays interrupts by one instruction, so the
    hlt                         ; wake-up tick cannot slip in before hlt
    jmp main
.frame:
    mov byte [frame_due], 0     ; frames missed while drawing are dropped, not queued:
    sti                         ; the counter counts frames actually drawn
    cmp byte [frozen], 0
    jne main
    call draw_frame
    jmp main

; IRQ0: count ticks, mark a frame due.  Uses CS overrides because a BIOS call in
; progress (int 10h during a mode switch) may have DS pointing elsewhere.
irq0:
    push ax
    dec byte [cs:tick_left]
    jnz .eoi
    mov al, [cs:p_tpf]
    mov [cs:tick_left], al
    mov byte [cs:frame_due], 1
.eoi:
    mov al, 0x20                ; non-specific EOI to the master PIC
    out 0x20, al
    pop ax
    iret

; Enter the video mode selected by is_text and paint its static guard band.
set_mode:
    mov si, gfx_desc
    mov ax, 0x0013
    cmp byte [is_text], 0
    je .set
    mov si, txt_desc
    mov al, 0x03
.set:
    mov [desc], si
    int 0x10
    cmp byte [is_text], 0
    je .guard
    mov ax, 0x1003              ; attribute bit 7 = bright background, not blink,
    xor bx, bx                  ; so white (15) backgrounds are possible
    int 0x10
    mov ah, 0x01                ; hide the cursor: it would blink over the picture
    mov cx, 0x2000
    int 0x10
.guard:
    mov si, [desc]
    call use_mode
    mov ax, [si+D_GUARDV]
    lea bx, [si+D_GUARD]
    xor di, di
    jmp fill

; SI = descriptor: load ES and stride for it.
use_mode:
    mov es, [si+D_SEG]
    mov ax, [si+D_STRIDE]
    mov [stride], ax
    ret

draw_frame:
    inc word [counter]
    test byte [p_flags], 2
    jz .mode
    mov ax, [counter]           ; LBA = counter * 128 mod 2048: a new cluster each frame
    shl ax, 7
    and ax, 0x07FF
    mov [dap_lba], ax
    mov si, dap
    mov dl, 0x80                ; the first hard disk, which QEMU boots from
    mov ah, 0x43                ; extended write (SeaBIOS ignores AL); errors are not the
    int 0x13                    ; guest's business here: the supervisor sees them outside
.mode:
    test byte [p_flags], 1
    jz .draw
    dec word [mode_left]
    jnz .draw
    mov ax, [p_period]
    mov [mode_left], ax
    xor byte [is_text], 1
    call set_mode
.draw:
    mov si, [desc]
    call use_mode

    ; colour band: graphics colour / text attribute = counter low byte
    mov cx, [counter]
    mov ah, cl
    mov al, [si+D_BANDCHR]
    test al, al
    jnz .band
    mov al, cl
.band:
    lea bx, [si+D_BAND]
    xor di, di
    call fill

    ; the 16 counter blocks, bit 0 first (leftmost)
    mov dx, [counter]
    xor di, di
    mov cx, 16
.block:
    mov ax, [si+D_BLACK]
    shr dx, 1
    jnc .paint
    mov ax, [si+D_WHITE]
.paint:
    lea bx, [si+D_BLK]
    call fill
    add di, [si+D_BLKSTEP]
    loop .block

    ; moving bar: erase at the previous position, draw at the new one
    lea bx, [si+D_BAR]
    mov ax, [counter]
    dec ax
    call bar_pos
    mov ax, [si+D_ERASE]
    call fill
    mov ax, [counter]
    call bar_pos
    mov ax, [si+D_BARV]
    ; fall through

; Fill a rectangle with AX (stosw).  BX -> rect {base, width words, rows}, DI = offset
; added to base, ES/stride = current mode.  Preserves all registers.
fill:
    pusha
    add di, [bx]
    mov dx, [bx+4]
    mov bx, [bx+2]
    mov bp, [stride]
.row:
    push di
    mov cx, bx
    rep stosw
    pop di
    add di, bp
    dec dx
    jnz .row
    popa
    ret

; AL = frame number -> DI = byte offset of the bar (64 positions).
bar_pos:
    and al, 63
    mul byte [si+D_BARSTEP]
    mov di, ax
    ret

; Mode 13h: 320x200, one byte per pixel, rows of 320 bytes.  Palette: 0 black,
; 1 blue, 14 yellow, 15 white.  Blocks are 12 px wide on a 20 px pitch with 4 px of
; guard either side.
gfx_desc:
    dw 0xA000, 320
    dw 80*320, 160, 40          ; guard band rows 80..119
    dw 0x0101
    dw 88*320 + 4, 6, 24        ; block 0: x 4..15, rows 88..111
    dw 20
    dw 0x0F0F, 0x0000
    dw 0, 160, 64               ; colour band rows 0..63
    dw 0
    dw 136*320, 2, 64           ; bar: 4 px wide, rows 136..199
    dw 5
    dw 0x0E0E, 0x0000

; Text mode 3: 80x25 cells of {char, attribute}, lines of 160 bytes.  A block is three
; cells (5 per block pitch, one guard cell either side); attribute high nibble is the
; background colour (bright thanks to blink off).
txt_desc:
    dw 0xB800, 160
    dw 10*160, 80, 5            ; guard band lines 10..14, blue background
    dw 0x1020
    dw 11*160 + 2, 3, 3         ; block 0: columns 1..3, lines 11..13
    dw 10
    dw 0xF020, 0x0020           ; white / black background spaces
    dw 0, 80, 8                 ; colour band lines 0..7
    dw 0x00B1                   ; shaded block char, attribute = counter
    dw 17*160, 1, 8             ; bar: one column, lines 17..24
    dw 2
    dw 0x0EDB, 0x0020           ; yellow full block / blank

; INT 13h extensions disk address packet: 1 sector from 0000:7C00 (this sector) to dap_lba.
dap:
    db 16, 0
    dw 1
    dw 0x7C00, 0
dap_lba:
    dq 0

    times 0x1F0 - ($ - $$) db 0
param_block:
p_magic     db "LOCOTI"
p_version   db 1
p_flags     db 0
p_divisor   dw 39773            ; round(1193182 / 30)
p_tpf       db 1
p_reserved  db 0
p_period    dw 30               ; about one second per video mode
    dw 0xAA55
