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

# Add to cart, checkout and the cart link in the languages of the shops users point this at
# (en/de/fr/es/it/nl/pl/pt): a German shopper who fills a "Warenkorb" has added to cart for the
# runner, the report and the scripted shopper alike.
ADD_TO_CART = re.compile(
    rf"add{_SEP}(?:\w+{_SEP})?(?:to{_SEP})?(?:the{_SEP})?(?:cart|basket|bag|trolley)"
    rf"|in{_SEP}den{_SEP}(?:warenkorb|einkaufswagen)|zum{_SEP}warenkorb{_SEP}hinzuf|ajouter{_SEP}au{_SEP}panier"
    rf"|a(?:ñ|n)adir{_SEP}al{_SEP}(?:carrito|cesta)|aggiungi{_SEP}al{_SEP}carrello|in{_SEP}(?:de{_SEP})?winkel(?:wagen|mand)"
    rf"|dodaj{_SEP}do{_SEP}koszyka|adicionar{_SEP}ao{_SEP}carrinho", re.I)
# "Buy now" and its one-click kin in the supported languages: on a product page it can place an
# order at once (one-click buying), so the purchase guard refuses it wherever it stands.
BUY_NOW = re.compile(
    rf"buy{_SEP}(?:it{_SEP})?now|jetzt{_SEP}kaufen|sofort{_SEP}kaufen|acheter{_SEP}maintenant|achat{_SEP}imm(?:é|e)diat"
    rf"|comprar{_SEP}(?:ahora|agora|ya)|compra{_SEP}(?:ora|subito|adesso)|nu{_SEP}kopen|direct{_SEP}kopen"
    rf"|kup{_SEP}teraz|今すぐ購入|今すぐ買う|立即购买|立即購買|马上购买|馬上購買",
    re.I)
CART_LINK = re.compile(
    r"(?:^|[\s_.])(?:cart|basket|bag|trolley|warenkorb|panier|carrito|carrello|winkelwagen|koszyk|carrinho)"
    r"(?:$|[\s_.(])|^\s*(?:cart|basket|bag|warenkorb|panier|carrito|carrello|winkel(?:wagen|mand)|koszyk|carrinho)\b",
    re.I)
CHECKOUT = re.compile(
    rf"check{_SEP}out|proceed{_SEP}to|zur{_SEP}kasse|\bkasse\b|passer{_SEP}(?:(?:à|a){_SEP}la{_SEP})?caisse"
    rf"|\bcommander\b|tramitar{_SEP}pedido|finalizar{_SEP}compra|\bcassa\b|afrekenen|do{_SEP}kasy", re.I)
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
# Fields of the small forms a shop's pages also hold (a coupon, a gift card, a search box, a
# newsletter sign-up, a quantity, an address lookup by postcode): submitting one of those is not
# an order, whatever its button says.
MINOR_FIELD = re.compile(
    r"coupon|promo|voucher|gift|discount|rabatt|gutschein|cup(?:ó|o)n|cupom|buono|sconto|korting|kod rabatowy"
    r"|クーポン|割引|优惠|優惠|search|query|suche|recherche|buscar|cerca|zoeken|szukaj|検索|搜索|newsletter"
    rf"|\bqty\b|quantit|menge|anzahl|cantidad|aantal|ilo(?:ś|s)(?:ć|c)|数量|數量"
    rf"|look{_SEP}up|find{_SEP}(?:my{_SEP})?address|post{_SEP}?code|\bzip\b|\bplz\b",
    re.I,
)
# Where an order form posts: "/place-order", "/checkout/complete", "/pay", "/orders/submit", ...
PURCHASE_ENDPOINT = re.compile(
    r"/(?:place|submit|confirm|complete|create)[-_]?orders?(?:/|$|[?#.])|/pay(?:ment)?s?(?:/|$|[?#.])"
    r"|/checkout/(?:complete|confirm|submit|place|pay|process|finish)|/orders?/(?:new|create|submit|confirm|place|complete)"
    r"|/purchase(?:/|$|[?#.])",
    re.I,
)
# What an order confirmation page says, in the supported languages: thanks for the order, the
# order placed / received / confirmed, or an order number followed by the number itself (a bare
# "order number" is also a track-your-order field's label). The runner checks every page a shopper
# lands on against it (an order that went through without --allow-purchase is never silent), the
# page classifier and the report call such a page a confirmation.
_ORDER_ID = r"\s*(?:[:：#№]|n[°ºo]\.?)?\s*#?\s*[A-Z]{0,4}[-\s]?\d[\w-]{2,}"
ORDER_CONFIRMATION = re.compile(
    "|".join((
        # en
        rf"thank{_SEP}(?:s|you){_SEP}for{_SEP}(?:your|the){_SEP}(?:order|purchase)",
        rf"(?:your{_SEP})?order{_SEP}(?:has{_SEP}been{_SEP}|was{_SEP}|is{_SEP})?(?:confirmed|placed|received)",
        rf"order{_SEP}(?:complete|successful)\b|purchase{_SEP}(?:complete|confirmed|successful)",
        rf"order{_SEP}(?:number|no\.?|id|#){_ORDER_ID}",
        # de
        rf"dank{_SEP}f(?:ü|ue)r{_SEP}(?:ihre|deine|die){_SEP}bestellung|bestellbest(?:ä|ae)tigung",
        rf"bestellung{_SEP}(?:ist{_SEP}|wurde{_SEP})?(?:eingegangen|erhalten|best(?:ä|ae)tigt|aufgegeben|abgeschlossen)",
        rf"bestell(?:nummer|nr\.?){_ORDER_ID}",
        # fr
        rf"merci{_SEP}(?:pour|de){_SEP}(?:votre|ta){_SEP}(?:commande|achat)",
        rf"commande{_SEP}(?:a{_SEP}(?:é|e)t(?:é|e){_SEP}|est{_SEP})?(?:confirm|enregistr|valid|pass)(?:é|e)e"
        rf"|commande{_SEP}(?:a{_SEP}(?:é|e)t(?:é|e){_SEP})?re(?:ç|c)ue",
        rf"num(?:é|e)ro{_SEP}de{_SEP}commande{_ORDER_ID}",
        # es / pt
        rf"gracias{_SEP}por{_SEP}(?:tu|su){_SEP}(?:pedido|compra)|obrigad[oa]{_SEP}pel[ao]{_SEP}(?:(?:seu|sua){_SEP})?(?:pedido|compra)",
        rf"pedido{_SEP}(?:(?:ha|foi){_SEP}(?:sido{_SEP})?)?(?:confirmado|realizado|recibido|recebido|completado)",
        rf"compra{_SEP}(?:confirmada|realizada|completada|conclu(?:í|i)da)",
        rf"n(?:ú|u)mero{_SEP}d[eo]{_SEP}pedido{_ORDER_ID}",
        # it
        rf"grazie{_SEP}per{_SEP}(?:il{_SEP}tuo{_SEP}|il{_SEP}suo{_SEP}|l['’]{_SEP}?)(?:ordine|acquisto)",
        rf"ordine{_SEP}(?:(?:è|e){_SEP}stato{_SEP})?(?:confermato|ricevuto|effettuato|completato)",
        rf"numero{_SEP}(?:di{_SEP}|dell['’]{_SEP}?)ordine{_ORDER_ID}",
        # nl
        rf"bedankt{_SEP}voor{_SEP}(?:je|uw){_SEP}(?:bestelling|aankoop)",
        rf"bestelling{_SEP}(?:is{_SEP})?(?:geplaatst|ontvangen|bevestigd)",
        rf"bestelnummer{_ORDER_ID}",
        # pl
        rf"dzi(?:ę|e)kujemy{_SEP}za{_SEP}(?:z(?:ł|l)o(?:ż|z)enie{_SEP})?zam(?:ó|o)wienie",
        rf"zam(?:ó|o)wienie{_SEP}(?:zosta(?:ł|l)o{_SEP})?(?:z(?:ł|l)o(?:ż|z)one|przyj(?:ę|e)te|potwierdzone)",
        rf"numer{_SEP}zam(?:ó|o)wienia{_ORDER_ID}",
        # ja
        rf"ご注文ありがとうございま|ご注文を(?:承り|受け付け)|注文が(?:確定|完了)|注文番号{_ORDER_ID}",
        # zh (Simplified and Traditional)
        rf"订单已(?:提交|确认|生成)|訂單已(?:提交|確認|成立)|感谢您的(?:订购|购买|订单)|感謝您的(?:訂購|購買|訂單)"
        rf"|(?:支付|付款)成功|订单号{_ORDER_ID}|訂單(?:編號|號碼){_ORDER_ID}",
    )),
    re.I,
)
SEARCH = re.compile(r"search|query|(?:^|[._\s])(?:q|k|kw|keywords?)(?:$|[._\s])", re.I)
REFINEMENT = re.compile(rf"refine|filter|facet|brand|categor|rating|price{_SEP}band|stars?", re.I)
SORT_LOW_HIGH = re.compile(rf"low{_SEP}(?:to|-){_SEP}high|price{_SEP}(?:ascending|asc)", re.I)
OPTION_GROUP = re.compile(r"option|size|colou?r|style|variant|flavou?r|capacity|pattern", re.I)
PRODUCT_URL = re.compile(r"/(?:products?|dp|items?|itm)(?:/|$|[-_.?])", re.I)
PRICE = re.compile(r"[$€£]\s?(\d{1,3}(?:,\d{3})*(?:\.\d{1,2})?)")


def control_label(name: str, text: str = "") -> str:
    """Words that describe one control: its visible text and its own name segment."""
    return f"{name.rsplit('.', 1)[-1].replace('_', ' ')} {text}".strip()
