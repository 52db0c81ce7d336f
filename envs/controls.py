"""What shop controls mean, from their words: the one place these patterns live.

The purchase guard (executor), the scripted shopper, the runner's outcome bookkeeping and the
run report all need to recognise "add to cart", "checkout" or "place order" on storefronts they
have never seen. They must agree — a report that counts a purchase the guard did not see as one
would mislead a UX team — so they all match against these patterns.

Matching is done on :func:`control_label`: the element's visible text plus the LAST segment of
its hierarchical name. Earlier segments name the container (``add_to_cart.color.olive`` is a
colour radio inside the add-to-cart form, not the add-to-cart button).
"""

from __future__ import annotations

import re

_SEP = r"[\s_.\-/]*"

ADD_TO_CART = re.compile(rf"add{_SEP}(?:\w+{_SEP})?(?:to{_SEP})?(?:the{_SEP})?(?:cart|basket|bag|trolley)", re.I)
BUY_NOW = re.compile(rf"buy{_SEP}(?:it{_SEP})?now", re.I)
CART_LINK = re.compile(r"(?:^|[\s_.])(?:cart|basket|bag|trolley)(?:$|[\s_.(])", re.I)
CHECKOUT = re.compile(rf"check{_SEP}out|proceed{_SEP}to", re.I)
# Words that commit an order or a payment wherever they stand, in the languages of the shops users
# point this at (en/de/fr/es/it/nl/pt/pl/ja/zh, Traditional Chinese too). Only phrases that mean
# "this sends the order" belong here: the runner counts a click on one as a purchase and the page
# classifier calls a page with one a checkout. Words that also label a product page's buy box
# ("Buy now", "Jetzt kaufen", "Commander", "Comprar") are ORDER_WORDS below.
_ART = rf"(?:(?:the|your|la|ma|votre|el|mi|su|o|a|meu|il|l|de|uw|je|mijn)['’]?{_SEP})?"
PLACE_ORDER = re.compile(
    "|".join((
        # en
        rf"place{_SEP}(?:your{_SEP})?order|(?:complete|submit|confirm){_SEP}(?:your{_SEP})?(?:purchase|order|payment)",
        rf"pay{_SEP}now|buy{_SEP}and{_SEP}pay|order{_SEP}and{_SEP}pay|order{_SEP}with{_SEP}obligation{_SEP}to{_SEP}pay",
        rf"complete{_SEP}checkout|pay{_SEP}[$€£]\s?\d",
        # de
        rf"(?:zahlungs|kosten)pflichtig{_SEP}(?:bestellen|kaufen|buchen)",
        rf"bestellung{_SEP}(?:abschicken|absenden|aufgeben|abschlie(?:ß|ss)en|best(?:ä|ae)tigen)",
        rf"jetzt{_SEP}(?:bezahlen|zahlen)|(?:kaufen|bestellen){_SEP}und{_SEP}(?:be)?zahlen",
        # fr
        rf"(?:passer|valider|confirmer|finaliser){_SEP}{_ART}commande|payer{_SEP}maintenant|commander{_SEP}et{_SEP}payer",
        # es / pt
        rf"(?:realizar|finalizar|confirmar|completar|hacer|fazer|concluir|enviar){_SEP}{_ART}pedido",
        rf"(?:confirmar|concluir|completar){_SEP}{_ART}compra|pagar{_SEP}(?:ahora|agora)|comprar{_SEP}y{_SEP}pagar",
        # it
        rf"(?:conferma|effettua|invia|completa)(?:re)?{_SEP}{_ART}ordine|paga{_SEP}(?:ora|adesso)",
        # nl
        rf"bestelling{_SEP}(?:plaatsen|afronden|bevestigen)|plaats{_SEP}{_ART}bestelling|nu{_SEP}betalen"
        rf"|bestellen{_SEP}en{_SEP}betalen",
        # pl
        rf"(?:kupuj(?:e|ę)|zamawiam){_SEP}i{_SEP}p(?:l|ł)ac(?:e|ę)|(?:z(?:l|ł)(?:o|ó)(?:z|ż)|potwierd(?:z|ź)|potwierdzam)"
        rf"{_SEP}zam(?:o|ó)wienie|zam(?:o|ó)wienie{_SEP}z{_SEP}obowi(?:a|ą)zkiem{_SEP}zap(?:l|ł)aty|zap(?:l|ł)a(?:c|ć){_SEP}teraz",
        # ja
        r"注文を?確定|注文する|購入を?確定|支払いを?確定|今すぐ支払",
        # zh (Simplified and Traditional)
        r"提交订单|提交訂單|确认(?:订单|支付|付款)|確認(?:訂單|支付|付款)|立即(?:支付|付款)",
    )),
    re.I,
)
# Words that commit an order only where an order is being made (a checkout/payment page, a form
# with card fields): on a product page the same "Buy now" / "Jetzt kaufen" / "Commander" opens
# the checkout. The purchase guard counts them on a purchase step, never elsewhere.
ORDER_WORDS = re.compile(
    r"\b(?:buy|purchase|confirm|order|pay|submit|complete|finish"  # en
    r"|kaufen|bestellen|bezahlen|zahlen|best(?:ä|ae)tigen|abschlie(?:ß|ss)en"  # de
    r"|commander|acheter|payer|confirmer|valider|finaliser"  # fr
    r"|comprar|pagar|confirmar|finalizar|pedir|concluir"  # es / pt
    r"|acquista(?:re)?|ordina(?:re)?|paga(?:re)?|conferma(?:re)?"  # it
    r"|kopen|betalen|afrekenen|bevestigen|afronden"  # nl
    r"|kup(?:uj(?:e|ę))?|zam(?:o|ó)w|zap(?:l|ł)a(?:c|ć)|potwierd(?:z|ź))\b"  # pl
    r"|購入|注文|支払|決済|购买|購買|支付|付款|下单|下單|结算|結帳",  # ja / zh
    re.I,
)
# What a payment field is called (its name, id, autocomplete token, label or placeholder).
PAYMENT_FIELD = re.compile(
    rf"cc{_SEP}(?:num|number|csc|exp|name)|card{_SEP}(?:number|no|num|holder)|credit{_SEP}card|cvc|cvv|csc\b"
    rf"|security{_SEP}code|expir|iban|\bbic\b|swift|sort{_SEP}code|account{_SEP}number|routing{_SEP}number"
    r"|kartennummer|pr(?:ü|ue)fziffer|num(?:é|e)ro de carte|cryptogramme|n(?:ú|u)mero de (?:la )?tarjeta"
    r"|n(?:ú|u)mero do cart(?:ã|a)o|numero (?:della )?carta|kaartnummer|numer karty|カード番号|セキュリティコード"
    r"|卡号|卡號|安全码",
    re.I,
)
# Fields of the small forms a checkout page also holds (a coupon, a gift card, a search box):
# submitting one of those is not an order.
MINOR_FIELD = re.compile(
    r"coupon|promo|voucher|gift|discount|rabatt|gutschein|cup(?:ó|o)n|cupom|buono|sconto|korting|kod rabatowy"
    r"|クーポン|割引|优惠|優惠|search|query|suche|recherche|buscar|cerca|zoeken|szukaj|検索|搜索|newsletter",
    re.I,
)
# Where an order form posts: "/place-order", "/checkout/complete", "/pay", "/orders/submit", ...
PURCHASE_ENDPOINT = re.compile(
    r"/(?:place|submit|confirm|complete|create)[-_]?orders?(?:/|$|[?#.])|/pay(?:ment)?s?(?:/|$|[?#.])"
    r"|/checkout/(?:complete|confirm|submit|place|pay|process|finish)|/orders?/(?:new|create|submit|confirm|place|complete)"
    r"|/purchase(?:/|$|[?#.])",
    re.I,
)
ORDER_CONFIRMATION = re.compile(
    rf"order{_SEP}(?:confirmed|placed|number|received)|thank{_SEP}you{_SEP}for{_SEP}your{_SEP}order", re.I)
SEARCH = re.compile(r"search|query|(?:^|[._\s])(?:q|k|kw|keywords?)(?:$|[._\s])", re.I)
REFINEMENT = re.compile(rf"refine|filter|facet|brand|categor|rating|price{_SEP}band|stars?", re.I)
SORT_LOW_HIGH = re.compile(rf"low{_SEP}(?:to|-){_SEP}high|price{_SEP}(?:ascending|asc)", re.I)
OPTION_GROUP = re.compile(r"option|size|colou?r|style|variant|flavou?r|capacity|pattern", re.I)
PRODUCT_URL = re.compile(r"/(?:products?|dp|items?|itm)(?:/|$|[-_.?])", re.I)
PRICE = re.compile(r"[$€£]\s?(\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?)")


def control_label(name: str, text: str = "") -> str:
    """Words that describe one control: its visible text and its own name segment."""
    return f"{name.rsplit('.', 1)[-1].replace('_', ' ')} {text}".strip()
