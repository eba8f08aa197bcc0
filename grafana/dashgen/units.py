"""Unit ids Grafana's value formatters know (packages/grafana-data valueFormats categories)."""

VALID_UNITS = frozenset("""
none string short percent percentunit humidity dB hex0x hex sci locale pixel
bytes decbytes bits decbits kbytes deckbytes mbytes decmbytes gbytes decgbytes tbytes dectbytes
pbytes decpbytes
pps binBps Bps binbps bps KiBs Kibits KBs Kbits MiBs Mibits MBs Mbits GiBs Gibits GBs Gbits
TiBs Tibits TBs Tbits PiBs Pibits PBs Pbits
dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday dateTimeAsLocal
dateTimeAsLocalNoDateIfToday dateTimeAsSystem dateTimeFromNow
hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms clocks
cps ops reqps rps wps iops eps mps cpm opm rpm wpm
celsius fahrenheit kelvin
watt kwatt watth kwatth joule volt amp
bool bool_yes_no bool_on_off
""".split())
