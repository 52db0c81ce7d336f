"""The bundled shop's catalog: products generated from word lists, plus its search index.

Why generated and not shipped: a catalog is large, and a fixed file would be one more thing to
download or to keep in sync. Everything here comes from a seeded ``random.Random`` walked in a
fixed order over plain lists and tuples (never sets or dicts whose order could vary), so the same
seed gives the same catalog byte for byte (``Catalog.to_json_bytes``) on every machine.

The search index lives here too because it is a precomputed view of the catalog: built once
at start-up so that a results page costs a dictionary walk, not a scan of every product.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_SIZE = 600
_ASIN_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_EPOCH = _dt.date(2019, 1, 1)

APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = ("6", "7", "8", "9", "10", "11", "12", "13")
PET_SIZES = ("Small", "Medium", "Large", "X-Large")


# --------------------------------------------------------------------------------------------
# Word lists. One entry per category: brands, a colour palette, and product types. Each type:
# (noun, descriptors, (min price, max price), attributes {name: values}, features, review lines,
#  options) where options is "" (none), "colors", "apparel", "shoes" or "pets".
# --------------------------------------------------------------------------------------------

_TypeSpec = tuple[str, tuple[str, ...], tuple[float, float], dict[str, tuple[str, ...]],
                  tuple[str, ...], tuple[str, ...], str]

_CATEGORIES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[_TypeSpec, ...]], ...] = (
    ("electronics", "Electronics",
     ("Sony", "Bose", "Anker", "JBL", "Samsung", "Sennheiser", "Soundcore", "Skullcandy", "Jabra"),
     ("Black", "White", "Silver", "Midnight Blue", "Rose Gold", "Graphite"),
     (
         ("Headphones", ("Wireless Noise Cancelling", "Over-Ear Bluetooth", "Wired Studio Monitor",
                         "Foldable On-Ear"), (29.99, 399.99),
          {"Connectivity": ("Bluetooth 5.3", "Bluetooth 5.2", "3.5 mm wired"),
           "Battery life": ("20 hours", "30 hours", "40 hours", "60 hours")},
          ("Industry-leading noise cancellation blocks out traffic and chatter",
           "Soft memory-foam ear cushions for all-day comfort",
           "Quick charge: 10 minutes gives 5 hours of playback"),
          ("The noise cancelling is excellent on flights.", "Comfortable even after hours of wear.",
           "Bass is punchy without drowning the vocals."), "colors"),
         ("Earbuds", ("True Wireless", "Sport", "Noise Cancelling", "Open-Ear"), (19.99, 279.99),
          {"Connectivity": ("Bluetooth 5.3", "Bluetooth 5.2"), "Water resistance": ("IPX4", "IPX5", "IPX7")},
          ("Secure fit wing tips stay in during workouts", "Charging case holds three extra charges",
           "Touch controls for calls, music and voice assistant"),
          ("They stay in my ears while running.", "Case is small enough for any pocket.",
           "Call quality is clear even outdoors."), "colors"),
         ("Bluetooth Speaker", ("Portable Waterproof", "Rugged Outdoor", "Smart Home", "Mini"),
          (24.99, 249.99),
          {"Water resistance": ("IP67", "IPX7", "IPX5"), "Battery life": ("12 hours", "16 hours", "24 hours")},
          ("360-degree sound fills the room", "Pair two speakers for stereo sound",
           "Floats in the pool and survives drops"),
          ("Surprisingly loud for its size.", "Took it camping and the battery lasted all weekend.",
           "Pairing was instant with my phone."), "colors"),
         ("Smartwatch", ("Fitness Tracker", "GPS Running", "AMOLED Display", "Health Monitoring"),
          (49.99, 449.99),
          {"Display": ("1.4 inch AMOLED", "1.9 inch LCD", "1.3 inch OLED"),
           "Battery life": ("5 days", "7 days", "14 days")},
          ("Tracks heart rate, sleep and blood oxygen", "Built-in GPS maps your runs without a phone",
           "Water resistant to 50 metres for swimming"),
          ("Sleep tracking matches how rested I feel.", "The screen is bright in direct sunlight.",
           "Notifications arrive instantly."), "colors"),
         ("Portable Charger", ("20000mAh USB-C", "Slim 10000mAh", "MagSafe Compatible", "65W Laptop"),
          (15.99, 129.99),
          {"Capacity": ("10000 mAh", "20000 mAh", "26800 mAh"), "Output": ("20 W", "30 W", "65 W")},
          ("Charges a phone four times over", "USB-C power delivery for laptops and tablets",
           "LED display shows the remaining charge"),
          ("Charged my phone three times on a trip.", "A bit heavy but worth it.",
           "Fast charging works as advertised."), "colors"),
     )),
    ("computers", "Computers & Accessories",
     ("Logitech", "Dell", "Lenovo", "HP", "ASUS", "Acer", "Razer", "Corsair", "SanDisk", "Samsung"),
     ("Black", "White", "Space Gray", "Silver", "Blue"),
     (
         ("Laptop", ("Thin and Light", "Gaming", "2-in-1 Touchscreen", "Business"), (299.99, 1899.99),
          {"Screen size": ("13.3 inch", "14 inch", "15.6 inch", "16 inch"),
           "Memory": ("8 GB RAM", "16 GB RAM", "32 GB RAM"), "Storage": ("256 GB SSD", "512 GB SSD", "1 TB SSD")},
          ("All-day battery life for work and study", "Full HD anti-glare display",
           "Backlit keyboard and fingerprint reader"),
          ("Boots in seconds and handles dozens of tabs.", "Fans get loud under heavy load.",
           "Great screen for the price."), "colors"),
         ("Wireless Mouse", ("Ergonomic Vertical", "Silent Click", "Gaming RGB", "Compact Travel"),
          (9.99, 149.99),
          {"Connectivity": ("2.4 GHz USB receiver", "Bluetooth", "Bluetooth and USB receiver"),
           "DPI": ("1600 DPI", "4000 DPI", "16000 DPI")},
          ("Contoured shape supports a natural hand position", "Silent buttons for quiet offices",
           "Battery lasts up to 24 months"),
          ("My wrist pain is gone after a week.", "Scroll wheel feels precise.",
           "Connects to my laptop and tablet."), "colors"),
         ("Mechanical Keyboard", ("Wireless", "RGB Backlit Gaming", "Tenkeyless", "Low-Profile"),
          (39.99, 229.99),
          {"Switch type": ("Red linear", "Brown tactile", "Blue clicky"), "Layout": ("Full size", "Tenkeyless", "75%")},
          ("Hot-swappable switches", "Per-key RGB lighting with software control",
           "Detachable USB-C cable"),
          ("Typing feels fantastic.", "The clicky switches annoy my roommate.",
           "Solid build with no flex."), "colors"),
         ("Monitor", ("27 inch 4K UHD", "24 inch Full HD IPS", "34 inch Curved Ultrawide", "165Hz Gaming"),
          (119.99, 899.99),
          {"Resolution": ("1920x1080", "2560x1440", "3840x2160"), "Refresh rate": ("60 Hz", "144 Hz", "165 Hz")},
          ("Thin bezels for multi-monitor setups", "Flicker-free with low blue light mode",
           "Height-adjustable stand"),
          ("Colours are accurate out of the box.", "Text is razor sharp.",
           "Stand wobbles slightly when typing."), ""),
         ("Portable SSD", ("1TB USB-C", "2TB Rugged", "500GB Pocket", "4TB High-Speed"), (49.99, 399.99),
          {"Capacity": ("500 GB", "1 TB", "2 TB", "4 TB"), "Read speed": ("1050 MB/s", "2000 MB/s")},
          ("Transfers a 4K movie in seconds", "Drop resistant up to 2 metres",
           "Works with PC, Mac, phones and consoles"),
          ("Much faster than my old hard drive.", "Tiny and light.", "Gets warm during long copies."), "colors"),
     )),
    ("home-kitchen", "Home & Kitchen",
     ("Cuisinart", "KitchenAid", "Ninja", "Hamilton Beach", "OXO", "Instant Pot", "Keurig", "Lodge", "Breville"),
     ("Stainless Steel", "Black", "Red", "White", "Sage Green", "Matte Gray"),
     (
         ("Coffee Maker", ("12-Cup Programmable", "Single Serve", "Drip", "Cold Brew"), (24.99, 299.99),
          {"Capacity": ("12 cups", "10 cups", "1 cup"), "Material": ("Stainless steel", "Plastic", "Glass")},
          ("Brew-strength control for bolder coffee", "24-hour programmable timer",
           "Auto shut-off for peace of mind"),
          ("Makes a hot, strong cup every morning.", "Easy to clean.", "The carafe drips a little."), "colors"),
         ("Blender", ("Professional Countertop", "Personal Smoothie", "High-Speed", "Immersion"),
          (29.99, 449.99),
          {"Power": ("600 W", "1000 W", "1500 W"), "Capacity": ("24 oz", "64 oz", "72 oz")},
          ("Crushes ice into snow in seconds", "Dishwasher-safe pitcher and blades",
           "Pre-set programs for smoothies and soups"),
          ("Smoothies come out perfectly smooth.", "It is loud but powerful.", "Cleanup takes a minute."), "colors"),
         ("Air Fryer", ("6-Quart Digital", "Dual Basket", "Compact 4-Quart", "Toaster Oven"), (49.99, 249.99),
          {"Capacity": ("4 quarts", "6 quarts", "8 quarts"), "Power": ("1500 W", "1700 W")},
          ("Crispy results with up to 75% less fat", "Non-stick dishwasher-safe basket",
           "One-touch presets for fries, chicken and fish"),
          ("Fries come out crispy every time.", "Fits a whole chicken.", "Counter footprint is large."), "colors"),
         ("Cookware Set", ("10-Piece Nonstick", "Stainless Steel Tri-Ply", "Cast Iron", "Ceramic"),
          (39.99, 399.99),
          {"Pieces": ("5 pieces", "10 pieces", "12 pieces"), "Oven safe": ("up to 350 F", "up to 500 F")},
          ("Even heating with no hot spots", "Works on all cooktops including induction",
           "Stay-cool riveted handles"),
          ("Eggs slide right off.", "Heavy and well made.", "Handles get warm near the pot."), "colors"),
         ("Electric Kettle", ("Gooseneck Pour-Over", "1.7 Liter Glass", "Variable Temperature", "Travel"),
          (19.99, 149.99),
          {"Capacity": ("0.8 liters", "1.0 liters", "1.7 liters"), "Power": ("1200 W", "1500 W")},
          ("Boils water in under five minutes", "Keep-warm function holds the temperature",
           "BPA-free with auto shut-off"),
          ("Perfect for pour-over coffee.", "Boils very quickly.", "Lid is a bit stiff."), "colors"),
     )),
    ("clothing", "Clothing",
     ("Hanes", "Levi's", "Columbia", "Under Armour", "Champion", "Carhartt", "Amazon Essentials", "The North Face"),
     ("Black", "Navy", "Heather Gray", "White", "Olive", "Burgundy", "Charcoal"),
     (
         ("T-Shirt", ("Men's Short Sleeve Crew Neck", "Women's Cotton V-Neck", "Men's Performance",
                      "Women's Relaxed Fit"), (7.99, 39.99),
          {"Material": ("100% cotton", "Cotton blend", "Polyester"), "Fit": ("Regular", "Slim", "Relaxed")},
          ("Tag-free collar for comfort", "Pre-shrunk cotton keeps its shape", "Machine washable"),
          ("Soft and fits true to size.", "Shrank a little after washing.", "Great basic tee."), "apparel"),
         ("Hoodie", ("Men's Pullover Fleece", "Women's Full-Zip", "Unisex Heavyweight", "Men's Sherpa-Lined"),
          (19.99, 89.99),
          {"Material": ("Cotton fleece", "Polyester fleece"), "Closure": ("Pullover", "Zipper")},
          ("Brushed fleece interior for warmth", "Front kangaroo pocket", "Ribbed cuffs and waistband"),
          ("Very warm and cosy.", "Sleeves are a bit long.", "Colour did not fade after washing."), "apparel"),
         ("Jeans", ("Men's 505 Regular Fit", "Women's High-Rise Skinny", "Men's Slim Straight",
                    "Women's Bootcut"), (24.99, 98.99),
          {"Material": ("99% cotton, 1% elastane", "100% cotton denim"), "Rise": ("Mid rise", "High rise")},
          ("Classic five-pocket styling", "Stretch denim moves with you", "Zip fly with button closure"),
          ("Fit is exactly like my old pair.", "Stretchy and comfortable.", "Runs slightly small."), "apparel"),
         ("Rain Jacket", ("Men's Waterproof Packable", "Women's Lightweight Hooded", "Insulated Winter",
                          "Windbreaker"), (39.99, 229.99),
          {"Material": ("Nylon", "Polyester"), "Water resistance": ("Waterproof", "Water resistant")},
          ("Sealed seams keep you dry", "Packs into its own pocket", "Adjustable hood and cuffs"),
          ("Stayed dry in a downpour.", "Light enough for travel.", "The hood could be bigger."), "apparel"),
     )),
    ("shoes", "Shoes",
     ("Nike", "Adidas", "New Balance", "ASICS", "Brooks", "Skechers", "Merrell", "Timberland", "Crocs"),
     ("Black", "White", "Gray", "Navy", "Black/White", "Tan"),
     (
         ("Running Shoes", ("Men's Cushioned", "Women's Lightweight", "Trail", "Stability"), (49.99, 179.99),
          {"Sole material": ("Rubber", "EVA foam"), "Closure": ("Lace-up",)},
          ("Responsive foam cushioning for long runs", "Breathable engineered mesh upper",
           "Durable rubber outsole grips wet roads"),
          ("Like running on clouds.", "Fits true to size.", "My knees feel better on long runs."), "shoes"),
         ("Hiking Boots", ("Men's Waterproof Mid", "Women's Leather", "Lightweight Trail", "Insulated Winter"),
          (69.99, 229.99),
          {"Sole material": ("Vibram rubber", "Rubber"), "Water resistance": ("Waterproof", "Water resistant")},
          ("Waterproof membrane keeps feet dry", "Aggressive lugs grip rocky trails", "Padded collar and tongue"),
          ("No break-in needed.", "Kept my feet dry crossing streams.", "A little heavy."), "shoes"),
         ("Sneakers", ("Men's Classic Leather", "Women's Platform", "Slip-On Canvas", "Retro Court"),
          (39.99, 149.99),
          {"Upper material": ("Leather", "Canvas", "Synthetic"), "Closure": ("Lace-up", "Slip-on")},
          ("Cushioned insole for all-day wear", "Timeless low-top design", "Easy to clean upper"),
          ("Goes with everything.", "Comfortable straight out of the box.", "Runs half a size large."), "shoes"),
         ("Sandals", ("Men's Slide", "Women's Strappy Flat", "Sport Water", "Cushioned Flip-Flop"),
          (14.99, 89.99),
          {"Sole material": ("EVA foam", "Rubber"), "Closure": ("Slip-on", "Hook and loop")},
          ("Contoured footbed with arch support", "Quick-drying straps", "Non-slip outsole"),
          ("Perfect for the beach.", "Arch support is great.", "Straps rubbed at first."), "shoes"),
     )),
    ("sports-outdoors", "Sports & Outdoors",
     ("Coleman", "Hydro Flask", "Gaiam", "CamelBak", "Osprey", "Bowflex", "Yeti", "Manduka", "Amazon Basics"),
     ("Black", "Blue", "Green", "Purple", "Orange", "Gray"),
     (
         ("Yoga Mat", ("Extra Thick Non-Slip", "Travel Foldable", "Eco-Friendly Cork", "Premium Print"),
          (14.99, 129.99),
          {"Thickness": ("4 mm", "6 mm", "10 mm"), "Material": ("TPE", "Natural rubber", "Cork")},
          ("Non-slip texture on both sides", "Carrying strap included", "Free of latex and PVC"),
          ("Great grip even in hot yoga.", "Thick enough for my knees.", "Smelled for a day or two."), "colors"),
         ("Dumbbells", ("Adjustable", "Neoprene Coated Pair", "Hex Rubber", "Cast Iron"), (19.99, 429.99),
          {"Weight": ("5 lb pair", "10 lb pair", "5-52.5 lb adjustable"), "Material": ("Cast iron", "Neoprene")},
          ("Replaces a whole rack of weights", "Comfortable knurled grip", "Floor-friendly coating"),
          ("Changing weights takes a second.", "Solid and well balanced.", "Takes up little space."), ""),
         ("Camping Tent", ("4-Person Dome", "2-Person Backpacking", "Instant Cabin", "Pop-Up Beach"),
          (39.99, 399.99),
          {"Capacity": ("2 people", "4 people", "6 people"), "Season": ("3-season", "4-season")},
          ("Sets up in under ten minutes", "Weatherproof rainfly with sealed seams", "Mesh roof for stargazing"),
          ("Stayed dry through a storm.", "Easy for one person to pitch.", "Packs down small."), "colors"),
         ("Water Bottle", ("Insulated Stainless Steel", "Wide Mouth", "Collapsible", "Filtered"), (9.99, 49.99),
          {"Capacity": ("18 oz", "24 oz", "32 oz", "40 oz"), "Material": ("Stainless steel", "Tritan plastic")},
          ("Keeps drinks cold 24 hours or hot 12", "Leak-proof lid", "Dishwasher safe"),
          ("Ice lasts all day in the car.", "Does not leak in my bag.", "Dents if you drop it."), "colors"),
         ("Hiking Backpack", ("40L Daypack", "65L Trekking", "Hydration", "Ultralight"), (29.99, 279.99),
          {"Capacity": ("20 liters", "40 liters", "65 liters"), "Material": ("Ripstop nylon", "Polyester")},
          ("Ventilated back panel keeps you cool", "Adjustable torso length", "Integrated rain cover"),
          ("Carries weight comfortably.", "Lots of useful pockets.", "Hip belt could be padded more."), "colors"),
     )),
    ("beauty", "Beauty & Personal Care",
     ("CeraVe", "Neutrogena", "Olay", "Philips", "Oral-B", "Dove", "The Ordinary", "Revlon", "Braun"),
     ("White", "Black", "Pink", "Blue", "Rose Gold"),
     (
         ("Moisturizer", ("Daily Facial", "Hydrating Night", "Oil-Free", "SPF 30"), (8.99, 59.99),
          {"Skin type": ("All", "Dry", "Oily", "Sensitive"), "Size": ("1.7 oz", "3 oz", "12 oz")},
          ("Hyaluronic acid locks in moisture", "Fragrance-free and non-comedogenic",
           "Developed with dermatologists"),
          ("My dry skin finally feels soft.", "Absorbs quickly without grease.", "Gentle on sensitive skin."), ""),
         ("Electric Toothbrush", ("Rechargeable Sonic", "Pro 1000", "Kids", "Travel"), (19.99, 199.99),
          {"Battery life": ("2 weeks", "3 weeks"), "Brushing modes": ("2 modes", "3 modes", "5 modes")},
          ("Removes up to 100% more plaque than a manual brush", "Pressure sensor protects gums",
           "Two-minute timer with 30-second pacer"),
          ("Teeth feel like after a dental cleaning.", "Battery lasts weeks.", "Replacement heads are pricey."),
          "colors"),
         ("Hair Dryer", ("Ionic Professional", "Travel Foldable", "Diffuser", "Volumizing Hot Air Brush"),
          (19.99, 429.99),
          {"Power": ("1200 W", "1875 W"), "Heat settings": ("2 settings", "3 settings")},
          ("Ionic technology reduces frizz", "Cool shot button sets your style", "Lightweight and quiet"),
          ("Cuts my drying time in half.", "Hair is less frizzy.", "Cord is a bit short."), "colors"),
         ("Shampoo", ("Moisturizing", "Clarifying", "Sulfate-Free", "Anti-Dandruff"), (5.99, 39.99),
          {"Hair type": ("All", "Curly", "Fine", "Color-treated"), "Size": ("12 oz", "16 oz", "33.8 oz")},
          ("Gently cleanses without stripping", "Infused with argan oil", "Safe for colour-treated hair"),
          ("Leaves my hair soft and shiny.", "Smells lovely.", "A little goes a long way."), ""),
     )),
    ("toys-games", "Toys & Games",
     ("LEGO", "Hasbro", "Mattel", "Melissa & Doug", "Ravensburger", "Hot Wheels", "Fisher-Price", "VTech"),
     ("Multicolor", "Red", "Blue", "Yellow", "Green"),
     (
         ("Building Set", ("Classic Creative Brick", "City Fire Station", "Technic Race Car", "Space Shuttle"),
          (9.99, 199.99),
          {"Pieces": ("300 pieces", "790 pieces", "1500 pieces"), "Age range": ("4+ years", "8+ years", "12+ years")},
          ("Encourages open-ended creative play", "Compatible with other brick sets",
           "Step-by-step illustrated instructions"),
          ("My son built it in one afternoon.", "Great quality pieces.", "Instructions were easy to follow."), ""),
         ("Board Game", ("Family Strategy", "Classic Trading", "Cooperative Adventure", "Party Word"),
          (12.99, 59.99),
          {"Players": ("2-4 players", "2-6 players", "3-8 players"), "Play time": ("30 minutes", "60 minutes")},
          ("Easy to learn, hard to master", "Perfect for family game night", "Includes all pieces and rules"),
          ("We play every Friday now.", "Lots of replay value.", "Rules took a while to learn."), ""),
         ("Jigsaw Puzzle", ("1000 Piece Landscape", "500 Piece Kids", "Panoramic", "3D Globe"), (9.99, 44.99),
          {"Pieces": ("500 pieces", "1000 pieces", "2000 pieces"), "Finished size": ("27 x 20 inch", "38 x 27 inch")},
          ("Precision-cut pieces fit snugly", "Glare-free linen finish", "Poster included"),
          ("Pieces fit perfectly.", "Beautiful image.", "One piece was missing."), ""),
         ("Remote Control Car", ("Off-Road Monster Truck", "High-Speed Drift", "Amphibious Stunt", "Kids"),
          (19.99, 149.99),
          {"Top speed": ("15 mph", "25 mph", "30 mph"), "Battery": ("Rechargeable", "AA batteries")},
          ("All-terrain tyres handle grass and gravel", "Two rechargeable batteries included",
           "2.4 GHz remote for racing with friends"),
          ("Fast and tough.", "Battery lasts about 20 minutes.", "Survived many crashes."), "colors"),
     )),
    ("books", "Books",
     ("Penguin", "HarperCollins", "Vintage", "Scribner", "Knopf", "Random House", "O'Reilly", "Tor"),
     ("Paperback",),
     (
         ("Novel", ("A Gripping Mystery", "A Historical", "A Literary", "A Science Fiction"), (8.99, 28.99),
          {"Format": ("Paperback", "Hardcover"), "Pages": ("320 pages", "416 pages", "512 pages")},
          ("A New York Times bestseller", "Soon to be a major motion picture", "Book club favourite"),
          ("Could not put it down.", "The ending surprised me.", "Slow start, brilliant finish."), ""),
         ("Cookbook", ("Quick Weeknight", "Plant-Based", "Baking", "Mediterranean"), (14.99, 39.99),
          {"Format": ("Hardcover", "Paperback"), "Pages": ("256 pages", "352 pages")},
          ("Over 100 recipes with photos", "Ingredients you can find anywhere", "Step-by-step techniques"),
          ("Every recipe I tried worked.", "Beautiful photography.", "Some ingredients are hard to find."), ""),
         ("Programming Guide", ("Python Crash Course", "Learning SQL", "Designing Data-Intensive Applications",
                                "JavaScript: The Definitive"), (24.99, 69.99),
          {"Format": ("Paperback", "Kindle"), "Edition": ("2nd edition", "3rd edition")},
          ("Hands-on projects in every chapter", "Written for beginners and professionals",
           "Updated for the latest version"),
          ("Clear explanations and good exercises.", "The best book on the topic.", "Some code is outdated."), ""),
     )),
    ("pet-supplies", "Pet Supplies",
     ("Purina", "Blue Buffalo", "KONG", "PetSafe", "Furhaven", "Nylabone", "Frisco", "Pedigree"),
     ("Brown", "Gray", "Blue", "Black", "Beige"),
     (
         ("Dog Bed", ("Orthopedic Memory Foam", "Calming Donut", "Elevated Cooling", "Waterproof"),
          (19.99, 149.99),
          {"Material": ("Memory foam", "Polyester fill"), "Washable": ("Removable washable cover",)},
          ("Supports joints of older dogs", "Non-skid bottom", "Machine-washable cover"),
          ("My old dog sleeps better.", "Cover washes well.", "Smaller than I expected."), "pets"),
         ("Dog Food", ("Adult Chicken and Rice", "Grain-Free Salmon", "Puppy", "Senior"), (14.99, 89.99),
          {"Flavor": ("Chicken", "Salmon", "Lamb"), "Weight": ("5 lb bag", "15 lb bag", "30 lb bag")},
          ("Real meat is the first ingredient", "No artificial colours or preservatives",
           "Supports healthy digestion"),
          ("My picky eater loves it.", "Coat is shinier.", "Kibble is a bit large for small dogs."), ""),
         ("Cat Tree", ("Multi-Level Tower", "Small Scratching Post", "Wall-Mounted", "Modern Wooden"),
          (24.99, 179.99),
          {"Height": ("32 inches", "52 inches", "72 inches"), "Material": ("Sisal and plush", "Wood")},
          ("Sisal-wrapped posts for scratching", "Cosy condo and top perch", "Stable wide base"),
          ("The cats fight over the top perch.", "Sturdy once assembled.", "Assembly took an hour."), "colors"),
         ("Dog Chew Toy", ("Durable Rubber", "Puzzle Treat Dispenser", "Rope", "Squeaky Plush"), (5.99, 29.99),
          {"Material": ("Natural rubber", "Cotton rope", "Nylon"), "Dog size": ("Small", "Medium", "Large")},
          ("Stands up to power chewers", "Stuff with treats for long play", "Helps clean teeth"),
          ("Lasted months with my lab.", "Keeps him busy for hours.", "Destroyed in a day."), "pets"),
     )),
    ("office", "Office Products",
     ("Pilot", "BIC", "Post-it", "Moleskine", "Swingline", "Sharpie", "Fellowes", "Amazon Basics"),
     ("Black", "Blue", "Assorted", "Red", "Green"),
     (
         ("Gel Pens", ("Retractable 12-Pack", "Fine Point", "Colored 24-Pack", "Quick-Dry"), (5.99, 24.99),
          {"Point size": ("0.5 mm", "0.7 mm", "1.0 mm"), "Pack": ("12 pens", "24 pens")},
          ("Smooth skip-free writing", "Comfortable rubber grip", "Quick-drying ink for left-handers"),
          ("Smoothest pens I have used.", "Ink does not smudge.", "Ran out faster than expected."), "colors"),
         ("Notebook", ("Hardcover Dotted", "Spiral College Ruled", "Softcover Lined", "Leather Journal"),
          (4.99, 34.99),
          {"Pages": ("120 pages", "192 pages", "240 pages"), "Paper": ("Lined", "Dotted", "Blank")},
          ("Thick paper with no bleed-through", "Lay-flat binding", "Elastic closure and ribbon marker"),
          ("Fountain pen ink does not bleed.", "Feels premium.", "Cover scuffs easily."), "colors"),
         ("Desk Organizer", ("Mesh 5-Compartment", "Bamboo Drawer", "Rotating Pen Holder", "Monitor Stand"),
          (12.99, 59.99),
          {"Material": ("Steel mesh", "Bamboo", "Plastic"), "Compartments": ("3", "5", "7")},
          ("Keeps pens, notes and clips in reach", "Sturdy non-slip base", "Assembles in minutes"),
          ("My desk is finally tidy.", "Looks nice and holds a lot.", "Smaller than pictured."), "colors"),
         ("Paper Shredder", ("12-Sheet Cross-Cut", "Micro-Cut", "Strip-Cut", "Heavy Duty"), (34.99, 249.99),
          {"Sheet capacity": ("8 sheets", "12 sheets", "18 sheets"), "Bin": ("4 gallons", "6 gallons")},
          ("Shreds credit cards and staples", "Jam-proof system", "Thermal overload protection"),
          ("Quiet and never jams.", "Bin fills quickly.", "Handles a lot of paper."), ""),
     )),
    ("tools", "Tools & Home Improvement",
     ("DEWALT", "Black+Decker", "BOSCH", "Makita", "Craftsman", "Milwaukee", "Ryobi", "Philips Hue"),
     ("Yellow", "Black", "Red", "Blue", "Gray"),
     (
         ("Cordless Drill", ("20V MAX Compact", "Brushless Hammer", "12V Lightweight", "Drill and Driver Kit"),
          (39.99, 299.99),
          {"Voltage": ("12 V", "18 V", "20 V"), "Battery": ("1 battery included", "2 batteries included")},
          ("High-speed transmission for fast drilling", "LED work light", "Compact, lightweight design"),
          ("Plenty of power for home projects.", "Battery charges fast.", "The case is flimsy."), ""),
         ("Screwdriver Set", ("42-Piece Precision", "Magnetic Ratcheting", "Insulated", "Electric"),
          (9.99, 79.99),
          {"Pieces": ("12 pieces", "42 pieces", "110 pieces"), "Tip": ("Magnetic", "Standard")},
          ("Hardened steel tips resist wear", "Storage case keeps bits organised", "Comfort grip handles"),
          ("Has every bit I need.", "Great for electronics repair.", "Case latch broke."), ""),
         ("LED Light Bulbs", ("60W Equivalent A19", "Smart Color Changing", "Dimmable Daylight", "Edison Vintage"),
          (7.99, 99.99),
          {"Brightness": ("800 lumens", "1100 lumens"), "Color temperature": ("2700 K", "5000 K")},
          ("Uses 85% less energy", "Lasts over 10 years", "Instant full brightness"),
          ("Bright and no flicker.", "Saved on my electric bill.", "One bulb died early."), ""),
         ("Tool Set", ("Home Repair 148-Piece", "Mechanics Socket", "Household Hand", "Pink Lady's"),
          (19.99, 199.99),
          {"Pieces": ("65 pieces", "148 pieces", "230 pieces"), "Case": ("Blow-molded case", "Tool bag")},
          ("Everything for everyday repairs", "Chrome vanadium steel", "Lifetime warranty"),
          ("Perfect first tool kit.", "Good quality for the price.", "Sockets are labelled clearly."), "colors"),
     )),
)

# Brands that make each product type (the category's list is the fallback): keeps titles plausible
# ("Coleman ... Camping Tent", never "Hydro Flask ... Camping Tent").
_TYPE_BRANDS: dict[str, tuple[str, ...]] = {
    "Headphones": ("Sony", "Bose", "Sennheiser", "JBL", "Skullcandy", "Jabra"),
    "Earbuds": ("Sony", "Bose", "Jabra", "Soundcore", "Samsung", "JBL", "Skullcandy"),
    "Bluetooth Speaker": ("JBL", "Bose", "Sony", "Soundcore", "Anker"),
    "Smartwatch": ("Samsung", "Garmin", "Amazfit", "Fitbit"),
    "Portable Charger": ("Anker", "Samsung", "INIU", "Belkin"),
    "Laptop": ("Dell", "Lenovo", "HP", "ASUS", "Acer"),
    "Wireless Mouse": ("Logitech", "Razer", "Corsair", "HP"),
    "Mechanical Keyboard": ("Logitech", "Razer", "Corsair", "Keychron"),
    "Monitor": ("Dell", "ASUS", "Acer", "Samsung", "LG"),
    "Portable SSD": ("SanDisk", "Samsung", "Crucial"),
    "Coffee Maker": ("Cuisinart", "Keurig", "Hamilton Beach", "Breville", "Ninja"),
    "Blender": ("Ninja", "KitchenAid", "Vitamix", "Hamilton Beach", "Breville"),
    "Air Fryer": ("Ninja", "Instant Pot", "Cuisinart", "COSORI"),
    "Cookware Set": ("Lodge", "Cuisinart", "OXO", "T-fal", "KitchenAid"),
    "Electric Kettle": ("Cuisinart", "OXO", "Hamilton Beach", "Breville", "Fellow"),
    "T-Shirt": ("Hanes", "Champion", "Under Armour", "Carhartt", "Amazon Essentials"),
    "Hoodie": ("Champion", "Hanes", "Carhartt", "Under Armour", "The North Face"),
    "Jeans": ("Levi's", "Wrangler", "Amazon Essentials", "Lee"),
    "Rain Jacket": ("Columbia", "The North Face", "Carhartt", "Amazon Essentials"),
    "Running Shoes": ("Nike", "Adidas", "New Balance", "ASICS", "Brooks"),
    "Hiking Boots": ("Merrell", "Timberland", "Columbia", "KEEN"),
    "Sneakers": ("Nike", "Adidas", "New Balance", "Skechers", "Vans"),
    "Sandals": ("Crocs", "Teva", "Adidas", "Skechers"),
    "Yoga Mat": ("Gaiam", "Manduka", "Amazon Basics", "Lululemon"),
    "Dumbbells": ("Bowflex", "Amazon Basics", "CAP Barbell", "Yes4All"),
    "Camping Tent": ("Coleman", "Amazon Basics", "Core", "Marmot"),
    "Water Bottle": ("Hydro Flask", "CamelBak", "Yeti", "Owala"),
    "Hiking Backpack": ("Osprey", "CamelBak", "Coleman", "Deuter"),
    "Moisturizer": ("CeraVe", "Neutrogena", "Olay", "The Ordinary"),
    "Electric Toothbrush": ("Philips", "Oral-B"),
    "Hair Dryer": ("Revlon", "Braun", "Philips", "Conair"),
    "Shampoo": ("Dove", "Neutrogena", "Pantene", "OGX"),
    "Building Set": ("LEGO", "Mega Bloks"),
    "Board Game": ("Hasbro", "Mattel", "Ravensburger"),
    "Jigsaw Puzzle": ("Ravensburger", "Melissa & Doug", "Buffalo Games"),
    "Remote Control Car": ("Hot Wheels", "DEERC", "Traxxas"),
    "Programming Guide": ("O'Reilly", "No Starch Press", "Manning"),
    "Dog Bed": ("Furhaven", "Frisco", "Bedsure"),
    "Dog Food": ("Purina", "Blue Buffalo", "Pedigree"),
    "Cat Tree": ("Frisco", "Amazon Basics", "FEANDREA"),
    "Dog Chew Toy": ("KONG", "Nylabone", "Frisco"),
    "Gel Pens": ("Pilot", "BIC", "Sharpie", "Paper Mate"),
    "Notebook": ("Moleskine", "Five Star", "Amazon Basics"),
    "Desk Organizer": ("Fellowes", "Amazon Basics", "SimpleHouseware"),
    "Paper Shredder": ("Fellowes", "Amazon Basics", "Bonsaii", "Swingline"),
    "Cordless Drill": ("DEWALT", "Black+Decker", "BOSCH", "Makita", "Milwaukee", "Ryobi"),
    "Screwdriver Set": ("Craftsman", "DEWALT", "Klein Tools", "iFixit"),
    "LED Light Bulbs": ("Philips Hue", "GE", "Sylvania", "Amazon Basics"),
    "Tool Set": ("Craftsman", "DEWALT", "Black+Decker", "Amazon Basics"),
}

_FIRST_NAMES = ("Jessica", "Michael", "Priya", "David", "Maria", "James", "Aisha", "Robert", "Emily", "Wei",
                "Carlos", "Sarah", "Ahmed", "Linda", "Kenji", "Olivia", "Daniel", "Fatima", "Thomas", "Grace",
                "Luis", "Hannah", "Ivan", "Chloe", "Samuel", "Nora", "Omar", "Rachel", "Tyler", "Mei")
_REVIEW_TITLES = {
    5: ("Absolutely love it", "Exceeded my expectations", "Best purchase this year", "Five stars"),
    4: ("Very good", "Great value", "Happy with it", "Solid choice"),
    3: ("It's okay", "Decent for the price", "Mixed feelings", "Does the job"),
    2: ("Disappointed", "Not as described", "Expected more", "Meh"),
    1: ("Returned it", "Stopped working", "Do not buy", "Waste of money"),
}
_REVIEW_OPENERS = {
    5: ("I did a lot of research before buying and this was the right call.", "Bought this as a gift and ended up getting one for myself."),
    4: ("Overall a good product with one small issue.", "Works well and arrived quickly."),
    3: ("It is fine, nothing special.", "Some things are good, some are not."),
    2: ("I wanted to like this more.", "Quality is lower than the photos suggest."),
    1: ("Mine broke within two weeks.", "This did not work for me at all."),
}
_BOOK_WORDS = ("Silent", "River", "Last", "Garden", "Winter", "Light", "House", "Stars", "Salt", "Paper",
               "Hidden", "City", "Night", "Orchard", "Northern", "Glass", "Memory", "Tide", "Bright", "Road")
_AUTHOR_LAST = ("Hart", "Okafor", "Lindqvist", "Moreno", "Tanaka", "Fischer", "Bennett", "Castillo", "Reyes", "Novak")
_COLOR_HEX = {
    "Black": "#222222", "White": "#f4f4f4", "Silver": "#c0c0c0", "Midnight Blue": "#1c2a4a", "Rose Gold": "#d9a08b",
    "Graphite": "#4b4f54", "Space Gray": "#5d6166", "Blue": "#2f6fd1", "Stainless Steel": "#b4b8bc", "Red": "#c0392b",
    "Sage Green": "#9caf88", "Matte Gray": "#7b7f83", "Navy": "#1f2f57", "Heather Gray": "#9a9a9a", "Olive": "#6b6b2a",
    "Burgundy": "#6d1a2a", "Charcoal": "#36393d", "Gray": "#8a8d91", "Black/White": "#444444", "Tan": "#c8a97e",
    "Green": "#2e8b57", "Purple": "#7d3c98", "Orange": "#e67e22", "Pink": "#e89ab5", "Multicolor": "#e0b030",
    "Yellow": "#f1c40f", "Paperback": "#d8c7a8", "Brown": "#7b5234", "Beige": "#d9c9a3", "Assorted": "#5fa8d3",
}


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    author: str
    stars: int
    title: str
    text: str
    date: str  # ISO date
    verified: bool


@dataclass(frozen=True)
class Category:
    slug: str
    name: str


@dataclass(frozen=True)
class Product:
    """One catalog item. Prices are integer cents: money never goes through binary floats."""

    id: str
    title: str
    brand: str
    category: str  # Category.slug
    product_type: str
    price_cents: int
    list_price_cents: int | None
    rating: float
    rating_count: int
    release_date: str
    colors: tuple[str, ...]
    sizes: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]
    features: tuple[str, ...]
    description: str
    reviews: tuple[Review, ...]

    @property
    def price(self) -> float:
        return self.price_cents / 100

    @property
    def option_names(self) -> tuple[str, ...]:
        """Options a shopper must choose before adding to cart ("size", "color")."""
        names: list[str] = []
        if self.sizes:
            names.append("size")
        if len(self.colors) > 1:
            names.append("color")
        return tuple(names)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["price"] = self.price
        data["list_price"] = self.list_price_cents / 100 if self.list_price_cents else None
        data["attributes"] = dict(self.attributes)
        return data


def format_price(cents: int) -> str:
    """``$1,234.99`` — the way US shops print money."""
    return f"${cents // 100:,}.{cents % 100:02d}"


def color_hex(color: str) -> str:
    return _COLOR_HEX.get(color, "#888888")


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    "a an and the for of to in on with by i want need looking some is are my me im i'm it that this "
    "under less than lower price dollars".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    """A deliberately tiny stemmer: plurals only (``batteries``, ``boxes``, ``headphones``)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, plural-stemmed tokens; ``Wi-Fi`` and ``wifi`` both work."""
    lowered = text.lower().replace("'", "")
    out: list[str] = []
    for word in _TOKEN.findall(lowered):
        if word not in _STOPWORDS:
            out.append(_stem(word))
    joined = re.sub(r"[^a-z0-9 ]", "", re.sub(r"[-/]", "", lowered))
    for word in joined.split():  # hyphenated words also indexed glued: "wi-fi" -> "wifi"
        if word not in _STOPWORDS and _stem(word) not in out:
            out.append(_stem(word))
    return out


class SearchIndex:
    """BM25 over each product's title, brand, category, type, attributes and colours.

    The brand and type are counted twice: "sony headphones" should put Sony headphones first
    even when another title happens to mention both words once. Scores are then scaled by the
    share of query words matched, as shoppers expect multi-word queries to narrow, not widen.
    """

    K1 = 1.2
    B = 0.75

    def __init__(self, products: Sequence[Product], category_names: dict[str, str]) -> None:
        self._products = tuple(products)
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._lengths: list[int] = []
        for idx, p in enumerate(self._products):
            fields = [p.title, p.brand, p.brand, p.product_type, p.product_type, category_names[p.category],
                      " ".join(v for _, v in p.attributes), " ".join(p.colors), p.id]
            counts: dict[str, int] = {}
            for tok in tokenize(" ".join(fields)):
                counts[tok] = counts.get(tok, 0) + 1
            self._lengths.append(sum(counts.values()))
            for tok, tf in counts.items():
                postings[tok].append((idx, tf))
        self._postings = dict(postings)
        n = len(self._products)
        self._avg_len = (sum(self._lengths) / n) if n else 1.0
        self._idf = {tok: math.log(1 + (n - len(ps) + 0.5) / (len(ps) + 0.5)) for tok, ps in self._postings.items()}

    def search(self, query: str) -> list[tuple[Product, float]]:
        """Every product sharing at least one token with the query, best first.

        Ties break on popularity (rating count) and then id, so the order is total and stable.
        """
        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, int] = defaultdict(int)
        terms = list(dict.fromkeys(tokenize(query)))
        for tok in terms:
            for idx, tf in self._postings.get(tok, ()):
                norm = tf + self.K1 * (1 - self.B + self.B * self._lengths[idx] / self._avg_len)
                scores[idx] += self._idf[tok] * tf * (self.K1 + 1) / norm
                matched[idx] += 1
        # Coordination: a product matching every query word beats one matching a rare word twice.
        for idx in scores:
            scores[idx] *= matched[idx] / len(terms)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], -self._products[kv[0]].rating_count,
                                                         self._products[kv[0]].id))
        return [(self._products[i], s) for i, s in ranked]


# The refinements and sort orders a results page offers. Keys are what travels in the URL.
SORTS: dict[str, str] = {
    "relevance": "Featured",
    "price-asc": "Price: Low to High",
    "price-desc": "Price: High to Low",
    "rating": "Avg. Customer Review",
    "newest": "Newest Arrivals",
}
# key -> (label, lowest cents inclusive, highest cents exclusive or None)
PRICE_BANDS: dict[str, tuple[str, int, int | None]] = {
    "0-25": ("Under $25", 0, 2500),
    "25-50": ("$25 to $50", 2500, 5000),
    "50-100": ("$50 to $100", 5000, 10000),
    "100-200": ("$100 to $200", 10000, 20000),
    "200-": ("$200 & Above", 20000, None),
}
RATING_FLOORS: tuple[int, ...] = (4, 3, 2, 1)


@dataclass(frozen=True)
class SearchRequest:
    """One results-page query; values are already validated (see ``Catalog.search``)."""

    query: str = ""
    category: str | None = None
    brand: str | None = None
    price: str | None = None
    rating: int | None = None
    sort: str = "relevance"


@dataclass(frozen=True)
class SearchResult:
    request: SearchRequest
    products: list[Product]
    departments: list[tuple[Category, int]]  # facet: departments of the matches (other filters applied)
    brands: list[tuple[str, int]]  # facet: brands of the matches (other filters applied)


def _in_band(p: Product, band: str) -> bool:
    _, lo, hi = PRICE_BANDS[band]
    return p.price_cents >= lo and (hi is None or p.price_cents < hi)


_SORT_KEYS = {
    "price-asc": lambda p: (p.price_cents, p.id),
    "price-desc": lambda p: (-p.price_cents, p.id),
    "rating": lambda p: (-p.rating, -p.rating_count, p.id),
    "newest": lambda p: (_dt.date.fromisoformat(p.release_date).toordinal() * -1, p.id),
}


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    seed: int
    categories: tuple[Category, ...]
    products: tuple[Product, ...]
    by_id: dict[str, Product] = field(repr=False, compare=False)
    index: SearchIndex = field(repr=False, compare=False)
    brands: tuple[str, ...] = field(default=(), compare=False)  # sorted case-insensitively

    def get(self, product_id: str) -> Product | None:
        return self.by_id.get(product_id)

    def category(self, slug: str) -> Category | None:
        for cat in self.categories:
            if cat.slug == slug:
                return cat
        return None

    def in_category(self, slug: str) -> list[Product]:
        return [p for p in self.products if p.category == slug]

    def search(self, req: SearchRequest) -> SearchResult:
        """Match, refine and sort; raises ValueError naming the first unknown value."""
        if req.sort not in SORTS:
            raise ValueError(f"unknown sort {req.sort!r}; expected one of {', '.join(SORTS)}")
        if req.price is not None and req.price not in PRICE_BANDS:
            raise ValueError(f"unknown price band {req.price!r}; expected one of {', '.join(PRICE_BANDS)}")
        if req.rating is not None and req.rating not in RATING_FLOORS:
            raise ValueError(f"unknown rating floor {req.rating!r}; expected one of {RATING_FLOORS}")
        if req.category is not None and self.category(req.category) is None:
            raise ValueError(f"unknown department {req.category!r}")
        if req.brand is not None and req.brand not in self.brands:
            raise ValueError(f"unknown brand {req.brand!r}")
        if req.query.strip():
            base = [p for p, _ in self.index.search(req.query)]
        else:
            base = sorted(self.products, key=lambda p: (-p.rating_count, p.id))

        def keep(p: Product, skip: str = "") -> bool:
            return ((skip == "category" or req.category is None or p.category == req.category)
                    and (skip == "brand" or req.brand is None or p.brand == req.brand)
                    and (req.price is None or _in_band(p, req.price))
                    and (req.rating is None or p.rating >= req.rating))

        matches = [p for p in base if keep(p)]
        if req.sort != "relevance":
            matches.sort(key=_SORT_KEYS[req.sort])
        dept_counts: dict[str, int] = {}
        for p in base:
            if keep(p, skip="category"):
                dept_counts[p.category] = dept_counts.get(p.category, 0) + 1
        departments = [(c, dept_counts[c.slug]) for c in self.categories if c.slug in dept_counts]
        brands = iter_brand_counts(p for p in base if keep(p, skip="brand"))
        return SearchResult(request=req, products=matches, departments=departments, brands=brands)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "categories": [asdict(c) for c in self.categories],
                "products": [p.to_json() for p in self.products]}

    def to_json_bytes(self) -> bytes:
        """Canonical serialisation: what "same seed, same catalog byte for byte" is checked on."""
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = "B0" + "".join(rng.choice(_ASIN_ALPHABET) for _ in range(8))
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def _model_code(rng: random.Random, brand: str) -> str:
    letters = "".join(ch for ch in brand.upper() if ch.isalpha())[:2] or "X"
    pattern = rng.randrange(5)
    if pattern == 0:
        return f"{letters}-{rng.randint(100, 999)}"
    if pattern == 1:
        return f"{letters}{rng.randint(10, 99)} Pro"
    if pattern == 2:
        return f"{rng.choice('ABCDEFGHKMNRSTWX')}{rng.choice('ABCDEFGHKMNRSTWX')}-{rng.randint(1, 9)}000X{rng.choice('MNRS')}{rng.randint(2, 6)}"
    if pattern == 3:
        return f"Series {rng.randint(3, 9)}"
    return f"{letters}{rng.randint(1000, 9999)}"


def _price_cents(rng: random.Random, lo: float, hi: float) -> int:
    # Log-uniform, then snapped to a shop-like ending (.99, .95, .49, .00).
    value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    ending = rng.choice((99, 99, 99, 95, 49, 0))
    dollars = max(1, int(value))
    return dollars * 100 + ending if ending else dollars * 100


def _title(rng: random.Random, cat_slug: str, brand: str, noun: str, descriptor: str,
           colors: tuple[str, ...]) -> tuple[str, str]:
    """(title, brand shown on the page); books are by an author, published by ``brand``."""
    if cat_slug == "books":
        words = rng.sample(_BOOK_WORDS, 2)
        author = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_AUTHOR_LAST)}"
        if noun == "Programming Guide":
            return f"{descriptor} Guide, by {author}", brand
        return f"The {words[0]} {words[1]}: {descriptor} {noun}, by {author}", brand
    if cat_slug in ("clothing", "shoes"):
        return f"{brand} {descriptor} {noun}", brand
    model = _model_code(rng, brand)
    base = f"{brand} {model} {descriptor} {noun}"
    if len(colors) == 1 and cat_slug not in ("books",):
        base += f", {colors[0]}"
    return base, brand


def _reviews(rng: random.Random, rating: float, count: int, lines: tuple[str, ...]) -> tuple[Review, ...]:
    out: list[Review] = []
    for _ in range(min(count, rng.randint(3, 8))):
        stars = max(1, min(5, round(rng.gauss(rating, 0.9))))
        author = f"{rng.choice(_FIRST_NAMES)} {rng.choice('ABCDEFGHJKLMNOPRSTW')}."
        body = " ".join((rng.choice(_REVIEW_OPENERS[stars]), rng.choice(lines)))
        day = _EPOCH + _dt.timedelta(days=rng.randint(200, 2400))
        out.append(Review(author=author, stars=stars, title=rng.choice(_REVIEW_TITLES[stars]), text=body,
                          date=day.isoformat(), verified=rng.random() < 0.8))
    out.sort(key=lambda r: r.date, reverse=True)
    return tuple(out)


def build_catalog(seed: int = 0, size: int = DEFAULT_SIZE) -> Catalog:
    """Generate the catalog for ``seed``: ``size`` products spread evenly over the categories."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"catalog seed must be a non-negative integer, got {seed!r}")
    if size < len(_CATEGORIES):
        raise ValueError(f"catalog size must be at least {len(_CATEGORIES)} (one per category), got {size}")
    rng = random.Random(f"shop-r1-catalog:{seed}")
    taken: set[str] = set()
    products: list[Product] = []
    for i in range(size):
        slug, _cat_name, brands, palette, types = _CATEGORIES[i % len(_CATEGORIES)]
        noun, descriptors, (lo, hi), attr_pools, features, review_lines, option_kind = rng.choice(types)
        brand = rng.choice(_TYPE_BRANDS.get(noun, brands))
        descriptor = rng.choice(descriptors)
        if option_kind in ("colors", "apparel", "shoes", "pets"):
            colors = tuple(rng.sample(palette, rng.randint(1, min(4, len(palette)))))
        else:
            colors = (rng.choice(palette),)
        sizes = {"apparel": APPAREL_SIZES, "shoes": SHOE_SIZES, "pets": PET_SIZES}.get(option_kind, ())
        if option_kind == "pets" and noun == "Dog Chew Toy":
            sizes = PET_SIZES[:3]
        title, shown_brand = _title(rng, slug, brand, noun, descriptor, colors)
        attributes = tuple((k, rng.choice(v)) for k, v in attr_pools.items())
        attributes += (("Brand", shown_brand),)
        if len(colors) == 1:
            attributes += (("Color", colors[0]),)
        price = _price_cents(rng, lo, hi)
        list_price = price + rng.randint(2, 12) * 500 if rng.random() < 0.3 else None
        rating = round(min(5.0, max(1.0, rng.gauss(4.2, 0.45))), 1)
        rating_count = int(rng.lognormvariate(5.0, 1.6)) + 1
        release = (_EPOCH + _dt.timedelta(days=rng.randint(0, 2300))).isoformat()
        description = (f"The {title.split(',')[0]} from {shown_brand}. "
                       f"{features[0]}. {features[1]}. {features[2]}.")
        products.append(Product(
            id=_asin(rng, taken), title=title, brand=shown_brand, category=slug, product_type=noun,
            price_cents=price, list_price_cents=list_price, rating=rating, rating_count=rating_count,
            release_date=release, colors=colors, sizes=sizes, attributes=attributes,
            features=tuple(rng.sample(features, len(features))), description=description,
            reviews=_reviews(rng, rating, rating_count, review_lines),
        ))
    categories = tuple(Category(slug, name) for slug, name, *_ in _CATEGORIES)
    names = {c.slug: c.name for c in categories}
    return Catalog(seed=seed, categories=categories, products=tuple(products),
                   by_id={p.id: p for p in products}, index=SearchIndex(products, names),
                   brands=tuple(sorted({p.brand for p in products}, key=lambda b: (b.lower(), b))))


def iter_brand_counts(products: Iterable[Product]) -> list[tuple[str, int]]:
    """Brands of ``products``, most frequent first (then alphabetical): the brand refinement."""
    counts: dict[str, int] = {}
    for p in products:
        counts[p.brand] = counts.get(p.brand, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))
