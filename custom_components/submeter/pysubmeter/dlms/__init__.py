"""DLMS/COSEM (IEC 62056): our own asyncio client, from HDLC and wrapper framing up to meters.

Kept free of imports here: ``profile`` needs ``cosem.Obis`` while ``meter``
needs ``profile``; import the modules themselves.
"""
