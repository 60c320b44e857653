Feature: Sign-in and session setup
  A Lync endpoint opens its RCC dialog through the Front End: INVITE with RequestSystemStatus,
  200 OK with systemStatus normal, ACK, GetCSTAFeatures, then MonitorStart on its line.

  Scenario Outline: A <profile> client signs in and monitors its line
    Given alice is signed in with <profile>
    Then alice is monitoring the line
    And the gateway holds 1 session and 1 PBX monitor
    And alice saw no protocol violations

    @cap-sign-in-lync2013
    Examples: Lync 2013 (UPDATE)
      | profile  |
      | lync2013 |

    @cap-sign-in-oc2007
    Examples: OC 2007 (re-INVITE)
      | profile  |
      | oc2007   |

    @cap-sign-in-oc2007r2
    Examples: OC 2007 R2 (UPDATE)
      | profile  |
      | oc2007r2 |

    @cap-sign-in-sipe
    Examples: pidgin-sipe (re-INVITE, CSeq restart, no answers to events)
      | profile  |
      | sipe     |

  @cap-line-uri-verbatim
  Scenario: The LineURI is taken as the client writes it
    Given alice is signed in with line tel:+14255551001;ext=1001
    Then alice is monitoring the line

  @transport-tcp @needs-gateway-in-process @cap-routing
  Scenario: The Front End reaches the gateway over TCP with a pinned IP
    Given the Front End reaches the gateway over TCP
    And alice is signed in
    Then alice is monitoring the line
