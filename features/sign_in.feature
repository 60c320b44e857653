Feature: Sign-in and session setup
  A Lync endpoint opens its RCC dialog through the Front End: INVITE with RequestSystemStatus,
  200 OK with systemStatus normal, ACK, GetCSTAFeatures, then MonitorStart on its line.

  Scenario Outline: Each client profile signs in and monitors its line
    Given alice is signed in with <profile>
    Then alice is monitoring the line
    And the gateway holds 1 session and 1 PBX monitor
    And alice saw no protocol violations

    Examples:
      | profile  |
      | lync2013 |
      | oc2007   |
      | oc2007r2 |
      | sipe     |

  Scenario: The LineURI is taken as the client writes it
    Given alice is signed in with line tel:+14255551001;ext=1001
    Then alice is monitoring the line

  @transport-tcp @needs-gateway-in-process
  Scenario: The Front End reaches the gateway over TCP with a pinned IP
    Given the Front End reaches the gateway over TCP
    And alice is signed in
    Then alice is monitoring the line
