-- Wireshark dissector for CSTA XML over TCP, in both framings PBXs use:
--  * ECMA-323 Annex J: 2 bytes (00 00), a 2-byte big-endian total length (header included),
--    4 ASCII digits of invoke ID, then one XML document;
--  * NUL-terminated: each XML document followed by one 00 byte (no invoke ID on the wire).
-- Each document is handed to Wireshark's XML dissector. Also registers application/csta+xml
-- bodies (CSTA inside SIP INFO and INVITE) with the XML dissector.
--
-- Load:  wireshark -X lua_script:tools/wireshark/csta.lua trace.pcapng
--        tshark -X lua_script:tools/wireshark/csta.lua -r trace.pcapng -Y csta
-- or copy it to ~/.local/lib/wireshark/plugins/. Streams are found by content (heuristic);
-- "Decode As… CSTA" works on any TCP port too.

local csta = Proto("csta", "CSTA XML over TCP (ECMA-323 Annex J)")

local f_version = ProtoField.uint16("csta.version", "Header bytes 0-1", base.HEX)
local f_length = ProtoField.uint16("csta.length", "Frame length", base.DEC)
local f_invoke = ProtoField.string("csta.invoke", "Invoke ID")
local f_root = ProtoField.string("csta.root", "Message")
local f_kind = ProtoField.string("csta.kind", "Kind")
local f_framing = ProtoField.string("csta.framing", "Framing")
csta.fields = { f_version, f_length, f_invoke, f_root, f_kind, f_framing }

local xml = Dissector.get("xml")

local function kind_of(root, invoke)
  if root:match("Event$") or invoke == "9999" then return "event" end
  if root:match("Response$") then return "response" end
  if root == "CSTAErrorCode" or root == "CSTAException" then return "error" end
  return "request"
end

local function frame_length(tvb, pinfo, offset)
  return tvb(offset + 2, 2):uint()
end

-- The root element's local name (after the XML declaration and any prefix).
local function root_of(text)
  local after_decl = (text:find("?>", 1, true) or 0) + 1
  local root = text:match("<([%a_][%w_%.%-]*:?[%w_%.%-]*)", after_decl) or "?"
  return (root:gsub("^[%w_%.%-]+:", ""))
end

local function add_document(tvb, pinfo, tree, whole, body, invoke, framing)
  local root = root_of(body:string())
  local kind = kind_of(root, invoke or "")
  pinfo.cols.protocol = "CSTA"
  pinfo.cols.info:append(string.format(" [%s] %s", invoke or "-", root))
  local title = string.format("CSTA %s %s", kind, root)
  if invoke then title = title .. ", invoke " .. invoke end
  local sub = tree:add(csta, whole, title)
  sub:add(f_framing, whole, framing)
  if invoke then
    sub:add(f_version, tvb(whole:offset(), 2))
    sub:add(f_length, tvb(whole:offset() + 2, 2))
    sub:add(f_invoke, tvb(whole:offset() + 4, 4))
  end
  sub:add(f_root, body, root)
  sub:add(f_kind, body, kind)
  if xml then xml:call(body:tvb(), pinfo, tree) end
end

local function dissect_frame(tvb, pinfo, tree)
  local len = tvb(2, 2):uint()
  if len < 8 or len > tvb:len() then return 0 end
  add_document(tvb, pinfo, tree, tvb(0, len), tvb(8, len - 8), tvb(4, 4):string(), "Annex J")
  return len
end

-- NUL-terminated documents: dissect every complete one, ask TCP for more for the rest.
local function dissect_nul(tvb, pinfo, tree)
  local offset = 0
  local total = tvb:len()
  while offset < total do
    local rest = tvb:raw(offset)
    local nul = rest:find("\0", 1, true)
    if not nul then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      return total
    end
    if nul > 1 then
      add_document(tvb, pinfo, tree, tvb(offset, nul), tvb(offset, nul - 1), nil, "NUL-terminated")
    end
    offset = offset + nul
  end
  return total
end

local function starts_nul_document(tvb)
  if tvb:len() < 2 then return false end
  local head = tvb:raw(0, math.min(tvb:len(), 64))
  return head:match("^<%?xml") ~= nil or head:match("^<[%a_]") ~= nil
end

function csta.dissector(tvb, pinfo, tree)
  if starts_nul_document(tvb) then
    return dissect_nul(tvb, pinfo, tree)
  end
  dissect_tcp_pdus(tvb, tree, 8, frame_length, dissect_frame)
  return tvb:len()
end

local function looks_like_csta(tvb, pinfo, tree)
  if tvb:len() < 9 then return false end
  local annex_j = tvb(0, 2):uint() == 0
    and tvb(4, 4):string():match("^%d%d%d%d$")
    and tvb(8, 1):string() == "<"
  -- SIP never starts with '<', so a stream that does is XML documents on their own.
  if not annex_j and not starts_nul_document(tvb) then return false end
  pinfo.conversation = csta
  csta.dissector(tvb, pinfo, tree)
  return true
end

csta:register_heuristic("tcp", looks_like_csta)
DissectorTable.get("tcp.port"):add_for_decode_as(csta)
if xml then
  DissectorTable.get("media_type"):add("application/csta+xml", xml)
end
