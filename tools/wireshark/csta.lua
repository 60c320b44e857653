-- Wireshark dissector for CSTA XML over TCP with the ECMA-323 Annex J header:
-- 2 bytes (00 00), a 2-byte big-endian total length (header included), 4 ASCII digits of invoke
-- ID, then one XML document, handed to Wireshark's XML dissector. Also registers
-- application/csta+xml bodies (CSTA inside SIP INFO and INVITE) with the XML dissector.
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
csta.fields = { f_version, f_length, f_invoke, f_root, f_kind }

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

local function dissect_frame(tvb, pinfo, tree)
  local len = tvb(2, 2):uint()
  if len < 8 or len > tvb:len() then return 0 end
  local invoke = tvb(4, 4):string()
  local body = tvb(8, len - 8)
  local text = body:string()
  local after_decl = (text:find("?>", 1, true) or 0) + 1
  local root = text:match("<([%a_][%w_%.%-]*:?[%w_%.%-]*)", after_decl) or "?"
  root = root:gsub("^[%w_%.%-]+:", "")
  local kind = kind_of(root, invoke)
  pinfo.cols.protocol = "CSTA"
  pinfo.cols.info:append(string.format(" [%s] %s", invoke, root))
  local sub = tree:add(csta, tvb(0, len), string.format("CSTA %s %s, invoke %s", kind, root, invoke))
  sub:add(f_version, tvb(0, 2))
  sub:add(f_length, tvb(2, 2))
  sub:add(f_invoke, tvb(4, 4))
  sub:add(f_root, body, root)
  sub:add(f_kind, body, kind)
  if xml then xml:call(body:tvb(), pinfo, tree) end
  return len
end

function csta.dissector(tvb, pinfo, tree)
  dissect_tcp_pdus(tvb, tree, 8, frame_length, dissect_frame)
  return tvb:len()
end

local function looks_like_csta(tvb, pinfo, tree)
  if tvb:len() < 9 then return false end
  if tvb(0, 2):uint() ~= 0 then return false end
  if not tvb(4, 4):string():match("^%d%d%d%d$") then return false end
  if tvb(8, 1):string() ~= "<" then return false end
  pinfo.conversation = csta
  csta.dissector(tvb, pinfo, tree)
  return true
end

csta:register_heuristic("tcp", looks_like_csta)
DissectorTable.get("tcp.port"):add_for_decode_as(csta)
if xml then
  DissectorTable.get("media_type"):add("application/csta+xml", xml)
end
