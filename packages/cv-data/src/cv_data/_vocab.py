"""Word lists and fonts for the synthetic sources (no downloads: fonts ship with matplotlib / DejaVu)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

WORDS = """able about above across action active actual after again against agency agent ahead allow almost
along already although always amount animal annual answer anyone appear apply approach area argue around
arrive article artist assume attack author autumn avoid balance barrier basic battle beach beautiful become
before begin behind believe benefit better beyond billion border bottom branch bridge brief bright bring
brother budget build business button camera campaign candle capital career carry castle center central
century chance change chapter charge choice church circle citizen claim class clear climate closer coast
collect college colour column common company compare concert contain control corner cotton country county
couple course cover create credit crowd culture current custom danger debate decade decide defence degree
deliver demand design detail develop differ dinner direct doctor dollar dream during early earth east
economy editor effect effort eight either election energy engine enough entire escape evening event
evidence exact example expect expert factor family farmer father feature field figure final finger finish
flight floor flower follow forest forget formal forward frame friend front future garden gather general
glass global golden ground growth guest habit harbor health heart heavy height history holiday honest
horse hotel house human hunter image impact income indeed island itself journal journey judge junior
kitchen knowledge ladder language large later launch leader learn letter level light limit listen little
local lucky machine magnet manage market master matter meadow member memory method middle minute mirror
model moment month morning mother motion mountain music nation nature nearly network never night normal
north notice number object ocean office orange order output owner paper parent partner patient pattern
people period person phone picture piece planet player pocket police policy portrait pretty price private
process produce profit project public purple quarter question quiet rabbit radio random rather reader
reason record region remain report result return river robust rocket sample school science season second
secret sector select senior series server settle shadow signal silver simple sister smooth social source
south speech spring square stable station steady stone story street strong studio summer supply surface
system table talent target teacher temple theory thing thread ticket timber today tomorrow total toward
tower travel trouble tunnel twelve united valley value velvet video village visit voice volume wagon
wander water weather weekend welcome west window winter wonder wooden worker yellow young zebra""".split()

FIRST_NAMES = """Maria James Aiko Omar Lena Pavel Sofia Chen Amara Lucas Ingrid Ravi Elena Tomas Nadia Felix
Hana Diego Freya Kwame Julia Mateo Yara Anton Leila Oscar Priya Samuel Zofia Ivan""".split()
LAST_NAMES = """Lopez Smith Tanaka Haddad Novak Petrov Rossi Wang Okafor Martin Berg Patel Garcia Silva Kaya
Costa Jensen Moreau Mensah Weber Ibarra Nakamura Dubois Kowalski Fischer Romero Andersen Sato Ortiz""".split()
COMPANIES = """Northwind Bluefield Harbor Cedar Summit Redwood Silverline Oakmont Brightway Meridian Lakeside
Ironbridge Greenleaf Starling Pinecrest Riverside Westgate Highland Copperfield Evergreen""".split()
COMPANY_SUFFIX = ["Trading Co.", "Logistics", "Supplies Ltd.", "Studio", "Partners", "Hardware", "Foods Inc."]
PRODUCTS = """Oat Milk|Green Tea|Dark Roast|Rice Crackers|Olive Oil|Tomato Soup|Honey Jar|Corn Flakes|Sea Salt|
Apple Juice|Peanut Butter|Basmati Rice|Black Beans|Lemonade|Granola|Coconut Water|Pasta Shells|Maple Syrup|
Paprika|Chili Sauce|Ginger Ale|Rye Bread|Almonds|Cocoa Mix|Mint Gum|Dish Soap|Paper Towels|Sparkling Water|
Oat Cookies|Fig Jam|Iced Coffee|Soy Sauce|Walnuts|Cranberry Mix|Vanilla Wafers|Lentil Chips""".replace(
    "\n", ""
).split("|")
CATEGORIES = {
    "countries": [
        "Brazil",
        "Canada",
        "Egypt",
        "France",
        "India",
        "Japan",
        "Kenya",
        "Mexico",
        "Norway",
        "Peru",
        "Spain",
        "Vietnam",
    ],
    "months": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "years": [str(y) for y in range(2012, 2025)],
    "products": ["Laptops", "Phones", "Tablets", "Monitors", "Printers", "Cameras", "Speakers", "Routers"],
    "teams": ["Sales", "Support", "Research", "Finance", "Legal", "Design", "Operations", "Marketing"],
    "fruits": ["Apples", "Bananas", "Cherries", "Grapes", "Mangoes", "Oranges", "Pears", "Plums"],
}
CHART_TOPICS = {
    "countries": ["Coffee exports (kt)", "Solar capacity (GW)", "Tourist arrivals (M)", "Rainfall (mm)"],
    "months": ["Monthly revenue (k$)", "Average temperature (°C)", "Website visits (k)", "Orders shipped"],
    "years": ["Annual profit (M$)", "Population (k)", "Graduates", "Patents filed"],
    "products": ["Units sold", "Returns", "Stock on hand", "Average price ($)"],
    "teams": ["Headcount", "Budget (k$)", "Tickets closed", "Hours logged"],
    "fruits": ["Harvest (t)", "Price per kg (¢)", "Crates shipped", "Orders"],
}
NOTE_TITLES = """Team sync|Dentist|Call plumber|Book flights|Quarterly review|Pick up parcel|Yoga class|
Car service|Board meeting|Library return|Piano lesson|Vet visit|Budget draft|Client lunch|Gym|Haircut|
Garden club|Tax forms|Birthday gift|Server patch|Demo day|Interview|Rent due|Guitar repair""".replace(
    "\n", ""
).split("|")


def _font_dirs() -> list[Path]:
    dirs = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype")]
    try:
        import matplotlib

        dirs.insert(0, Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf")
    except ImportError:  # pragma: no cover - matplotlib is a hard dependency
        pass
    return [d for d in dirs if d.is_dir()]


_FONT_FILES = {
    "sans": ["DejaVuSans.ttf"],
    "sans_bold": ["DejaVuSans-Bold.ttf"],
    "serif": ["DejaVuSerif.ttf", "STIXGeneral.ttf"],
    "serif_bold": ["DejaVuSerif-Bold.ttf", "STIXGeneralBol.ttf"],
    "serif_italic": ["DejaVuSerif-Italic.ttf", "STIXGeneralItalic.ttf"],
    "mono": ["DejaVuSansMono.ttf"],
    "mono_bold": ["DejaVuSansMono-Bold.ttf"],
    "condensed": ["DejaVuSansCondensed.ttf", "DejaVuSerifCondensed.ttf"],
}


@functools.cache
def font_paths(style: str) -> tuple[str, ...]:
    """Font files available for ``style`` (``sans``, ``serif``, ``mono``, ``*_bold``, ...)."""
    found: list[str] = []
    for name in _FONT_FILES[style]:
        for d in _font_dirs():
            p = d / name
            if p.is_file() and os.access(p, os.R_OK):
                found.append(str(p))
                break
    if not found:
        raise FileNotFoundError(
            f"no font for style {style!r} (looked for {_FONT_FILES[style]} in matplotlib's mpl-data and "
            "/usr/share/fonts): install matplotlib or fonts-dejavu"
        )
    return tuple(found)


@functools.cache
def load_font(path: str, size: int):  # -> ImageFont.FreeTypeFont
    from PIL import ImageFont

    return ImageFont.truetype(path, size)
