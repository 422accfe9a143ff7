"""AMBA bus signatures (manager's view; a subordinate port uses ``In(...)``)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiLiteSignature", "AxiStreamSignature", "RESP_OKAY", "RESP_SLVERR", "RESP_DECERR"]

RESP_OKAY = 0b00
RESP_SLVERR = 0b10
RESP_DECERR = 0b11


class AxiStreamSignature(wiring.Signature):
    """AXI4-Stream with TDATA, TVALID, TREADY and TLAST, and TUSER when ``user_width`` > 0.

    Parameters
    ----------
    data_width : int
        Width of TDATA in bits, a positive multiple of 8.
    user_width : int
        Width of TUSER, 0 (no TUSER) .. 32.
    """

    def __init__(self, data_width: int, user_width: int = 0):
        if not isinstance(data_width, int) or data_width <= 0 or data_width % 8:
            raise ValueError(
                f"AXI4-Stream data width must be a positive multiple of 8, not {data_width!r}")
        if not isinstance(user_width, int) or not 0 <= user_width <= 32:
            raise ValueError(f"AXI4-Stream user width must be an integer 0..32, "
                             f"not {user_width!r}")
        self.data_width, self.user_width = data_width, user_width
        members = {"tdata": Out(data_width), "tvalid": Out(1), "tready": In(1),
                   "tlast": Out(1)}
        if user_width:
            members["tuser"] = Out(user_width)
        super().__init__(members)

    def __eq__(self, other):
        return (isinstance(other, AxiStreamSignature) and other.data_width == self.data_width
                and other.user_width == self.user_width)

    def __repr__(self):
        return f"AxiStreamSignature({self.data_width}, {self.user_width})"


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite with 32-bit data.

    Parameters
    ----------
    addr_width : int
        Width of AWADDR and ARADDR, 3..32.
    """

    def __init__(self, addr_width: int):
        if not isinstance(addr_width, int) or not 3 <= addr_width <= 32:
            raise ValueError(f"AXI4-Lite address width must be 3..32, not {addr_width!r}")
        self.addr_width = addr_width
        super().__init__({
            "awaddr": Out(addr_width), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arvalid": Out(1), "arready": In(1),
            "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return isinstance(other, AxiLiteSignature) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"AxiLiteSignature({self.addr_width})"
